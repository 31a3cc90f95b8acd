"""What the Redis store promises beyond the conformance suite: its keys, TTLs, connections and set-up."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from acp_adapters.core.memory_store import MemoryStore
from acp_adapters.core.models import Message, MessagePart, Run, RunStatus, utc_now
from acp_adapters.core.settings import Settings
from acp_adapters.core.store import EventRecord, RunRecord, Signal, StoreUnavailable
from acp_adapters.stores import store_from_url
from acp_adapters.stores.redis import RedisStore
from tests.deployments.base import REPO_ROOT, free_port
from tests.stores.backends import REDIS_URL, delete_prefix

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@pytest.fixture
async def store(prefix: str) -> AsyncIterator[RedisStore]:
    store = RedisStore.from_url(REDIS_URL, prefix=prefix, retention=60, lease_ttl=5)
    await store.start()
    yield store
    await store.close()


def event(n: int, type: str = "message.part") -> EventRecord:
    return EventRecord(type, b'{"type":"%s","n":%d}' % (type.encode(), n))


def with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


# set-up -----------------------------------------------------------------------------------------------
def test_nothing_connects_at_import_or_construction() -> None:
    code = (
        "import sys, acp_adapters.stores as s; assert 'redis' not in sys.modules, 'redis imported';"
        f"st = s.store_from_url('redis://127.0.0.1:{free_port()}/0');"
        "print(type(st).__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "RedisStore"


def test_store_from_url() -> None:
    settings = Settings(run_retention=12.0, max_finished_runs=7, lease_ttl=3.0, max_retained_bytes=5000)
    for url in ("", None, "memory://", " memory:// "):
        memory = store_from_url(url, settings=settings)
        assert isinstance(memory, MemoryStore)
        assert (memory.retention, memory.max_finished_runs) == (12.0, 7)
    for url in ("redis://127.0.0.1:6379/3", "rediss://cache.example:6380/0", "unix:///tmp/redis.sock?db=2"):
        shared = store_from_url(url, settings=settings, prefix="app:")
        assert isinstance(shared, RedisStore)
        assert (shared.url, shared.prefix) == (url, "app:")
        assert (shared.retention, shared.max_finished_runs, shared.lease_ttl) == (12.0, 7, 3.0)
        assert shared.max_retained_bytes == 5000
    assert isinstance(store_from_url("redis://h/0"), RedisStore)
    from_query = store_from_url("redis://h:1/2?prefix=app:acp:&client_name=x")
    assert isinstance(from_query, RedisStore)
    assert (from_query.url, from_query.prefix) == ("redis://h:1/2?client_name=x", "app:acp:")
    with pytest.raises(ValueError, match="unknown store URL"):
        store_from_url("postgres://h/db")


async def test_refused_connection_is_store_unavailable_at_once() -> None:
    store = RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0")
    await asyncio.wait_for(store.start(), 5)  # logs it; the engine starts anyway
    for call in (store.get_run(uuid.uuid4()), store.count_events(uuid.uuid4())):
        with pytest.raises(StoreUnavailable, match="the store is unreachable"):
            await asyncio.wait_for(call, 5)
    await store.close()


# keys and TTLs ----------------------------------------------------------------------------------------
async def test_every_key_is_under_the_prefix_and_expires(
    store: RedisStore, prefix: str, raw: redis.Redis
) -> None:
    going, done = Run(agent_name="echo"), Run(agent_name="echo")
    for run in (going, done):
        await store.create_run(RunRecord(run=run, owner="o"), event(0, "run.created"))
        await store.append_events(run.run_id, [event(1), event(2)])
        await store.send_signal(run.run_id, Signal("cancel"))
    await store.renew_leases([going.run_id], 5)
    await store.update_run(done.run_id, {"status": RunStatus.COMPLETED, "finished_at": utc_now()})
    session_id, resource_id = uuid.uuid4(), uuid.uuid4()
    await store.extend_session(session_id, ["u1"], state="s")
    await store.put_resource(resource_id, b"data")

    ids = [str(going.run_id), str(done.run_id), str(session_id), str(resource_id)]
    ours = [key.decode() for key in raw.scan_iter(count=1000) if any(i in key.decode() for i in ids)]
    assert ours and all(key.startswith(prefix) for key in ours)
    keys = {key.decode() for key in raw.scan_iter(match=prefix + "*", count=1000)}
    # 3 per run, 2 session, 1 resource, leases, and the bookkeeping of what is retained (3)
    assert len(keys) == 13
    for key in keys:
        ttl = raw.pttl(key)
        if key in {prefix + name for name in ("leases", "finished", "retained", "retained:bytes")}:
            assert ttl == -1  # bounded by their members, not by time
        elif str(going.run_id) in key:
            assert 59_000 < ttl <= 60_000, key  # max(retention, 3 * lease): refreshed by the lease
        else:
            assert 0 < ttl <= 60_000, key


async def test_a_running_run_outlives_a_short_retention_through_its_lease(
    prefix: str, raw: redis.Redis
) -> None:
    store = RedisStore.from_url(REDIS_URL, prefix=prefix, retention=0.5, lease_ttl=0.3)
    try:
        run = Run(agent_name="echo")
        await store.create_run(RunRecord(run=run), event(0, "run.created"))
        for _ in range(10):  # 2 s, four times the retention
            await store.renew_leases([run.run_id], 0.3)
            await asyncio.sleep(0.2)
        assert await store.get_run(run.run_id) is not None
        await store.update_run(run.run_id, {"status": RunStatus.FAILED, "finished_at": utc_now()})
        assert 0 < raw.pttl(f"{prefix}run:{run.run_id}") <= 500
        await asyncio.sleep(0.7)
        assert await store.get_run(run.run_id) is None
        assert await store.read_events(run.run_id, 0) == []
        assert not raw.exists(f"{prefix}run:{run.run_id}:events")
    finally:
        await store.close()


async def test_the_snapshot_is_a_small_hash_beside_the_stream(
    store: RedisStore, prefix: str, raw: redis.Redis
) -> None:
    run = Run(agent_name="echo")
    await store.create_run(RunRecord(run=run), event(0, "run.created"))
    for i in range(500):
        await store.append_events(run.run_id, [event(i)])
    output = [Message(role="agent/echo", parts=[MessagePart(content="hi")])]
    await store.update_run(run.run_id, {"status": RunStatus.IN_PROGRESS, "output": output})
    run_key = f"{prefix}run:{run.run_id}"
    assert raw.type(run_key) == b"hash"
    assert raw.hlen(run_key) == len(Run.model_fields) + 1  # and ~worker
    worker = raw.hget(run_key, "~worker")
    assert isinstance(worker, bytes)
    _, pid = worker.decode().rsplit(":", 1)
    assert int(pid) == os.getpid()
    memory = raw.memory_usage(run_key)
    assert isinstance(memory, int) and memory < 2000
    assert raw.xlen(run_key + ":events") == 501
    # Event i is entry 0-(i+1): a reader resumes from any index with one range.
    entries = raw.xrange(run_key + ":events", "0-501", "+")
    assert entries is not None and entries[0][1] is not None
    assert entries[0][1][b"d"] == event(499).data


async def test_another_database_number(prefix: str, raw: redis.Redis) -> None:
    url = with_db(REDIS_URL, 5)
    store, other = RedisStore.from_url(url, prefix=prefix), RedisStore.from_url(url, prefix=prefix)
    raw5 = redis.Redis.from_url(url)
    try:
        run = Run(agent_name="echo")
        await store.create_run(RunRecord(run=run), event(0, "run.created"))
        assert raw5.exists(f"{prefix}run:{run.run_id}")
        assert not raw.exists(f"{prefix}run:{run.run_id}")
        receiver = asyncio.create_task(store.receive_signal(run.run_id))
        await asyncio.sleep(0.2)
        await other.send_signal(run.run_id, Signal("resume", b"{}"))
        assert await asyncio.wait_for(receiver, 5) == Signal("resume", b"{}")
    finally:
        await store.close()
        await other.close()
        delete_prefix(url, prefix)
        raw5.close()


async def test_waiters_hold_no_connection_each(prefix: str, raw: redis.Redis) -> None:
    # Three connections for the process (one is the notifier's): a waiter that held one would starve the rest.
    name = f"acp-test-{uuid.uuid4().hex[:8]}"
    store = RedisStore.from_url(REDIS_URL, prefix=prefix, client_name=name, max_connections=3)
    sender = RedisStore.from_url(REDIS_URL, prefix=prefix)
    try:
        # Runs this process executes wait for signals; runs another process executes are followed.
        runs = [Run(agent_name="echo") for _ in range(100)]
        followed = [Run(agent_name="echo") for _ in range(100)]
        for run in runs:
            await store.create_run(RunRecord(run=run), event(0, "run.created"))
        for run in followed:
            await sender.create_run(RunRecord(run=run), event(0, "run.created"))
        signals = [asyncio.create_task(store.receive_signal(run.run_id)) for run in runs]
        readers = [asyncio.create_task(store.read_events(run.run_id, 1, timeout=20)) for run in followed]
        await asyncio.sleep(1.0)
        assert not any(task.done() for task in signals + readers)
        assert len([c for c in raw.client_list() if c.get("name") == name]) <= 3
        started = time.monotonic()
        for run, other in zip(runs, followed, strict=True):
            await sender.send_signal(run.run_id, Signal("cancel"))
            await sender.append_events(other.run_id, [event(1)])
        assert await asyncio.wait_for(asyncio.gather(*signals), 10) == [Signal("cancel")] * 100
        assert await asyncio.wait_for(asyncio.gather(*readers), 10) == [[event(1)]] * 100
        assert time.monotonic() - started < 3.0  # woken by the notifier, not by polling
    finally:
        await store.close()
        await sender.close()


async def test_the_executing_process_wakes_its_own_readers(store: RedisStore, raw: redis.Redis) -> None:
    run = Run(agent_name="echo")
    await store.create_run(RunRecord(run=run), event(0, "run.created"))
    for i in range(1, 20):
        reader = asyncio.create_task(store.read_events(run.run_id, i, timeout=10))
        await asyncio.sleep(0.01)
        started = time.monotonic()
        await store.append_events(run.run_id, [event(i)])
        assert await asyncio.wait_for(reader, 5) == [event(i)]
        assert time.monotonic() - started < 0.5
    # ... in process: it subscribed to no channel of the run.
    db = urlsplit(REDIS_URL).path.strip("/") or "0"
    assert raw.pubsub_numsub(f"{store.prefix}ch:{db}:events:{run.run_id}")[0][1] == 0


async def test_options_reach_redis_py_but_responses_stay_bytes(prefix: str) -> None:
    store = RedisStore.from_url(REDIS_URL, prefix=prefix, decode_responses=True, health_check_interval=10)
    try:
        run = Run(agent_name="echo")
        await store.create_run(RunRecord(run=run), event(0, "run.created"))
        assert await store.read_events(run.run_id, 0) == [event(0, "run.created")]
    finally:
        await store.close()


async def test_at_most_max_finished_runs_are_kept_in_redis(prefix: str, raw: redis.Redis) -> None:
    store = RedisStore.from_url(REDIS_URL, prefix=prefix, max_finished_runs=2)
    try:
        runs = [Run(agent_name="echo") for _ in range(4)]
        for run in runs:
            await store.create_run(RunRecord(run=run), event(0, "run.created"))
            await store.update_run(run.run_id, {"status": RunStatus.COMPLETED})
            await asyncio.sleep(0.005)
        assert [raw.exists(f"{prefix}run:{run.run_id}:events") for run in runs] == [0, 0, 1, 1]
        assert raw.zcard(f"{prefix}finished") == 2
    finally:
        await store.close()
