"""Stores beyond the in-memory default, and :func:`store_from_url` to pick one from a setting.

``acp_adapters.stores.redis.RedisStore`` needs ``acp-adapters[redis]``; it is imported only when asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from acp_adapters.core.memory_store import MemoryStore

if TYPE_CHECKING:
    from acp_adapters.core.settings import Settings
    from acp_adapters.core.store import Store

__all__ = ["store_from_url"]


def store_from_url(url: str | None, *, settings: Settings | None = None, **options: Any) -> Store:
    """The store a URL names, e.g. from an ``ACP_STORE`` environment variable.

    * ``""``, ``None`` or ``memory://``: the in-memory store (one process);
    * ``redis://host:port/db``, ``rediss://...`` (TLS), ``unix:///path.sock?db=0``: :class:`RedisStore`
      (``options`` go to it, e.g. ``prefix="myapp:acp:"``).

    ``settings`` supplies the retention, the bounds on finished runs and on retained bytes and (Redis)
    the lease time. Nothing
    connects here: the engine starts the store on its event loop.
    """
    url = (url or "").strip()
    scheme = url.partition("://")[0].lower() if "://" in url else url.lower()
    tuning: dict[str, Any] = {}
    if settings is not None:
        tuning = {
            "retention": settings.run_retention,
            "max_finished_runs": settings.max_finished_runs,
            "max_retained_bytes": settings.max_retained_bytes,
        }
    if scheme in ("", "memory"):
        return MemoryStore(**{**tuning, **options})
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisStore  # without redis-py: an ImportError naming the extra

        if settings is not None:
            tuning.update(lease_ttl=settings.lease_ttl)
        return RedisStore.from_url(url, **{**tuning, **options})
    # The Django database store is configured in Django's settings, not by URL: see acp_adapters.django.
    raise ValueError(f"unknown store URL {url!r}: use memory:// or redis://host:port/db")
