"""The stores the conformance suite (:mod:`acp_adapters.testing.stores`, run by
``tests/stores/test_conformance.py``) runs against.

Adding a store
==============

Write a module ``tests/stores/backend_<name>.py`` with a module-level ``BACKENDS: list[StoreBackend]``
(nothing else to edit: :func:`load` finds it). A :class:`StoreBackend` has

* ``name``: the test id (``memory``, ``redis``, ``django-sqlite``...);
* ``marks``: pytest marks for its tests (``pytest.mark.redis``, ``pytest.mark.django``...);
* ``fixtures``: pytest fixtures it needs before a test starts (``("transactional_db",)`` for a Django
  database store: the suite's tests are async and the store is used from other threads);
* ``check()``: skip (or, under ``ACP_REQUIRE_SERVICES``, fail) when its server is absent: call
  :func:`tests.deployments.base.require_service`;
* ``open_scope()``: a fresh, empty :class:`StoreScope` for one test.

A :class:`~acp_adapters.testing.stores.StoreScope` (shipped with the suite) hands out store instances
over the same data: ``await scope.open(**options)`` gives a new, started instance, as another worker
process would have it (for a single-process store, the same instance each time), and
``await scope.aclose()`` closes them all and deletes the test's data. The options are
:data:`STORE_OPTIONS`; a backend ignores the ones it has no use for.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from acp_adapters.core.memory_store import MemoryStore
from acp_adapters.core.store import Store
from acp_adapters.testing.stores import STORE_OPTIONS, StoreScope
from tests.deployments.base import require_service

__all__ = ["REDIS_URL", "STORE_OPTIONS", "StoreBackend", "StoreScope", "load"]

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


class StoreBackend(ABC):
    """One kind of store; see the module docstring."""

    name: str = ""
    marks: tuple[Any, ...] = ()
    fixtures: tuple[str, ...] = ()

    def check(self) -> None:  # noqa: B027 - optional hook
        """Skip (or fail) the test when the store's server is not there."""

    @abstractmethod
    def open_scope(self) -> StoreScope:
        """A fresh scope for one test."""


# memory -----------------------------------------------------------------------------------------------
class _MemoryScope(StoreScope):
    def __init__(self) -> None:
        super().__init__()
        self.store: MemoryStore | None = None

    async def new_store(self, **options: Any) -> Store:
        # One process: every "instance" is the same store.
        if self.store is None:
            options.pop("lease_ttl", None)
            self.store = MemoryStore(**options)
        return self.store


class MemoryBackend(StoreBackend):
    name = "memory"

    def open_scope(self) -> StoreScope:
        return _MemoryScope()


# redis ------------------------------------------------------------------------------------------------
def redis_address(url: str = REDIS_URL) -> tuple[str, int]:
    """The host and port of a ``redis://`` URL."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 6379


def delete_prefix(url: str, prefix: str) -> int:
    """Delete every key under ``prefix`` in the database of ``url``; returns how many there were."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


class _RedisScope(StoreScope):
    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.prefix = f"acp-test-{uuid.uuid4().hex[:12]}:"

    async def new_store(self, **options: Any) -> Store:
        from acp_adapters.stores.redis import RedisStore

        return RedisStore.from_url(self.url, prefix=self.prefix, **options)

    async def aclose(self) -> None:
        await super().aclose()
        delete_prefix(self.url, self.prefix)


class RedisBackend(StoreBackend):
    name = "redis"
    marks = (pytest.mark.redis,)

    def __init__(self, url: str = REDIS_URL) -> None:
        self.url = url

    def check(self) -> None:
        host, port = redis_address(self.url)
        require_service(host, port, f"Redis ({self.url}, from REDIS_URL)")

    def open_scope(self) -> StoreScope:
        return _RedisScope(self.url)


BACKENDS: list[StoreBackend] = [MemoryBackend(), RedisBackend()]


def load() -> list[StoreBackend]:
    """This module's backends, then those of every ``tests/stores/backend_*.py``, by module name."""
    found = list(BACKENDS)
    here = [str(Path(__file__).parent)]
    for info in sorted(pkgutil.iter_modules(here), key=lambda info: info.name):
        if info.name.startswith("backend_"):
            module = importlib.import_module(f"{__package__}.{info.name}")
            found.extend(module.BACKENDS)
    names = [backend.name for backend in found]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise ValueError(f"two store backends are named {sorted(duplicates)}")
    return found
