"""The Redis store (``pip install "acp-adapters[redis]"``): :class:`RedisStore`, shared by every worker
process on every machine.

Its modules, one job each:

* ``store``: :class:`RedisStore`, runs, events, signals and leases;
* ``sessions``: sessions, resources and idempotency keys;
* ``retention``: what is kept once done with, bounded by ``max_retained_bytes``;
* ``scripts``: the Lua scripts, one per step that must be atomic;
* ``codec``: how runs, events and signals are laid out in Redis values;
* ``connection``: one redis-py client per process and event loop, a deadline on every command;
* ``notifier``: one pub/sub connection per process that wakes local waiters.

Appends are written behind in batches by the core's :mod:`acp_adapters.core.write_behind`.
"""

from __future__ import annotations

try:
    import redis  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(f'the Redis store needs redis-py ({exc}): pip install "acp-adapters[redis]"') from exc

from .store import RedisStore

__all__ = ["RedisStore"]
