"""Fixtures of the store tests: ``stores`` (a :class:`~tests.stores.backends.StoreScope`) over every backend.

A test that takes ``stores`` runs once per backend of :func:`tests.stores.backends.load` (ids ``memory``,
``redis``, and any ``tests/stores/backend_*.py`` adds); ``store`` is the scope's first instance.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from acp_adapters.core.store import Store
from tests.stores.backends import REDIS_URL, RedisBackend, StoreBackend, StoreScope, delete_prefix, load
from tests.stores.redis_server import RedisServer

_BACKENDS = load()


@pytest.fixture(params=[pytest.param(b, id=b.name, marks=b.marks) for b in _BACKENDS])
def store_backend(request: pytest.FixtureRequest) -> StoreBackend:
    """The kind of store this test runs against (available, or the test is skipped / failed)."""
    backend: StoreBackend = request.param
    backend.check()
    for name in backend.fixtures:
        request.getfixturevalue(name)
    return backend


@pytest.fixture
async def stores(store_backend: StoreBackend) -> AsyncIterator[StoreScope]:
    """Store instances over the same, empty data; each ``await stores.open()`` is one more worker."""
    scope = store_backend.open_scope()
    try:
        yield scope
    finally:
        await scope.aclose()


@pytest.fixture
async def store(stores: StoreScope) -> Store:
    """A started store with default options."""
    return await stores.open()


@pytest.fixture(scope="module")
def redis_process() -> Iterator[RedisServer]:
    """A redis-server of the test module's own (not the machine's), which its tests may stop or freeze."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(redis_process: RedisServer) -> RedisServer:
    """The module's own redis-server, running (a previous test may have left it stopped)."""
    if redis_process.process is None or redis_process.process.poll() is not None:
        redis_process.start()
    return redis_process


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of the Redis store of its own for one test; its keys are deleted after it."""
    RedisBackend().check()
    prefix = f"acp-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    delete_prefix(REDIS_URL, prefix)


@pytest.fixture
def raw() -> Iterator[redis.Redis]:
    """A plain (sync) Redis client, to look at what the store wrote."""
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()
