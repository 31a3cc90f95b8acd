"""What the Redis store keeps once done with, and its bound in bytes (``max_retained_bytes``).

A finished run (its hash, stream of events and signals), a session (its hash and history), a resource
(its bytes and owner) and an idempotency key are *items*. Each counts for the memory Redis reports for
its keys (``MEMORY USAGE``, measured by the script that writes it) plus its bookkeeping entries, so
that the bound is what an operator sees in Redis, overheads included: a run with a few small events
costs ~6 KiB, since a stream allocates 4 KiB for its first node.

Three keys under the prefix do the bookkeeping: ``retained`` (sorted set: item -> when its keys
expire), ``retained:bytes`` (hash: item -> bytes, and ``total``) and ``finished`` (sorted set: run id
-> when it ended, for ``max_finished_runs``). Every script that writes an item then drops, in the same
step, what has expired, the finished runs beyond ``max_finished_runs``, and the items that expire
first (the oldest, whatever their kind) while the total is over ``max_retained_bytes``. No round trip
is added for it. Oldest first, not runs first: a run that has just ended is the last to go, so that its
client can still read it, whatever else fills the budget.

Runs still going are not items and are never evicted (the engine bounds them with ``max_active_runs``
and ``max_run_log_bytes``); nor are the three bookkeeping keys and the leases counted apart from the
items' share. The scripts call ``MEMORY USAGE`` (Redis 4 and later): an ACL that denies it to the
store's user breaks them.
"""

from __future__ import annotations

from typing import Any

from .connection import RedisConnection, milliseconds

__all__ = ["RedisRetention"]


class RedisRetention:
    """The bookkeeping keys and arguments the scripts that keep items take (see the module docstring)."""

    prefix: str
    retention: float
    max_finished_runs: int
    max_retained_bytes: int
    _redis: RedisConnection

    def _book_keys(self) -> list[str]:
        """The bookkeeping keys, last in a script's ``KEYS``."""
        return [self.prefix + "retained", self.prefix + "retained:bytes", self.prefix + "finished"]

    def _book_args(self) -> list[Any]:
        """The bookkeeping arguments, first in a script's ``ARGV``."""
        return [self.prefix, self.max_retained_bytes, self.max_finished_runs, milliseconds(self.retention)]

    async def retained_bytes(self) -> int:
        """The bytes counted against ``max_retained_bytes`` now (items not yet trimmed included)."""
        with self._redis.reachable():
            total: Any = await self._redis.client.hget(self.prefix + "retained:bytes", "total")
        return int(total or 0)
