"""A store built by hand takes what it was not given from the service's settings."""

from __future__ import annotations

from acp_adapters import ACPService, AgentRegistry, Settings
from acp_adapters.core.memory_store import MemoryStore
from acp_adapters.stores.redis import RedisStore

SETTINGS = Settings(run_retention=5.0, max_finished_runs=3, lease_ttl=2.0)


def test_a_memory_store_takes_the_service_settings_it_was_not_given() -> None:
    store = MemoryStore(max_finished_runs=7)
    ACPService(AgentRegistry(), store=store, settings=SETTINGS)
    assert (store.retention, store.max_finished_runs) == (5.0, 7)
    default = ACPService(AgentRegistry(), settings=SETTINGS).store
    assert isinstance(default, MemoryStore)
    assert (default.retention, default.max_finished_runs) == (5.0, 3)


def test_a_redis_store_takes_the_service_settings_it_was_not_given() -> None:
    store = RedisStore("redis://127.0.0.1:6379/0", retention=60.0)  # nothing connects yet
    assert (store.retention, store.max_finished_runs, store.lease_ttl) == (60.0, 10_000, 10.0)
    ACPService(AgentRegistry(), store=store, settings=SETTINGS)
    assert (store.retention, store.max_finished_runs, store.lease_ttl) == (60.0, 3, 2.0)
