"""The Redis store's bound in bytes (``max_retained_bytes``) and its owner-scoped sessions, in Redis itself.

The conformance suite checks what every store promises through the store's methods; these tests look at
Redis: the memory it reports for the store's keys, the bookkeeping, and races between connections.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis

from acp_adapters.core.models import Run, RunStatus, utc_now
from acp_adapters.core.settings import Settings
from acp_adapters.core.store import EventRecord, ResourceRecord, RunRecord, SessionRecord
from acp_adapters.stores.redis import RedisStore
from tests.stores.backends import REDIS_URL

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

KiB = 1024


@pytest.fixture
async def store(prefix: str) -> AsyncIterator[RedisStore]:
    store = RedisStore.from_url(REDIS_URL, prefix=prefix, retention=60, max_retained_bytes=128 * KiB)
    await store.start()
    yield store
    await store.close()


def event(n: int, size: int = 200, type: str = "message.part") -> EventRecord:
    data = b'{"type":"%s","n":%d,"pad":"%s"}' % (type.encode(), n, b"x" * size)
    return EventRecord(type, data)


async def start_run(store: RedisStore, owner: str | None = None) -> Run:
    run = Run(agent_name="echo")
    await store.create_run(RunRecord(run=run, owner=owner), event(0, type="run.created"))
    return run


async def finish(store: RedisStore, run: Run, events: int = 4, size: int = 200) -> None:
    await store.append_events(run.run_id, [event(i, size) for i in range(1, events + 1)])
    changes = {"status": RunStatus.COMPLETED, "finished_at": utc_now()}
    terminal = event(events + 1, type="run.completed")
    record = await store.transition(run.run_id, changes, expect={RunStatus.CREATED}, events=[terminal])
    assert record is not None  # the record of the change, even if the run was evicted at once


def memory_of(raw: redis.Redis, prefix: str, *, besides: tuple[str, ...] = ()) -> int:
    """What Redis reports for every key under ``prefix``, but those containing one of ``besides``."""
    total = 0
    for key in raw.scan_iter(match=prefix + "*", count=1000):
        if not any(part in key.decode() for part in besides):
            total += raw.memory_usage(key, samples=0) or 0
    return total


def sizes_of(raw: redis.Redis, prefix: str) -> dict[str, int]:
    """The bytes each item is counted for, and their ``total``."""
    sizes: Any = raw.hgetall(prefix + "retained:bytes")
    return {item.decode(): int(n) for item, n in sizes.items()}


# the bound in bytes -----------------------------------------------------------------------------------
async def test_redis_memory_of_what_is_kept_stays_under_the_bound(
    store: RedisStore, prefix: str, raw: redis.Redis
) -> None:
    budget = store.max_retained_bytes
    going = await start_run(store)
    going_events = [event(i, 4 * KiB) for i in range(1, 65)]  # 256 KiB: twice the budget, never evicted
    await store.append_events(going.run_id, going_events)
    runs = []
    for i in range(300):
        run = await start_run(store, owner="alice")
        await finish(store, run)
        runs.append(run)
        if i % 10 == 0:  # and sessions, resources and keys between them
            await store.put_resource(uuid.uuid4(), b"r" * 2 * KiB, owner="alice")
            await store.extend_session(uuid.uuid4(), [f"http://h/acp/resources/{uuid.uuid4()}"] * 20)
            assert await store.claim_key(f"alice:{uuid.uuid4()}", b"v" * 100, 60) is None
        if i % 50 == 49:
            # All of Redis's memory for it, bookkeeping included: only the run going is not counted.
            used = memory_of(raw, prefix, besides=(str(going.run_id), "leases"))
            counted = await store.retained_bytes()
            assert used <= counted <= budget, (i, used, counted)
    kept = [run for run in runs if await store.get_run(run.run_id) is not None]
    assert 10 <= len(kept) < 50, len(kept)  # a run of 5 small events costs Redis ~6 KiB
    assert kept == runs[-len(kept) :]  # the oldest went first
    assert raw.zcard(prefix + "finished") == len(kept)
    # The run still going lost nothing, though it alone holds twice the budget.
    record = await store.get_run(going.run_id)
    assert record is not None and record.run.status is RunStatus.CREATED
    assert (await store.read_events(going.run_id, 0))[1:] == going_events


async def test_many_small_items_count_their_bookkeeping(prefix: str, raw: redis.Redis) -> None:
    # Thousands of tiny items: the bookkeeping (sorted sets and hash past their compact encodings) costs
    # more than the items' own keys, and is counted too.
    budget = 1024 * KiB
    store = RedisStore.from_url(REDIS_URL, prefix=prefix, max_retained_bytes=budget, max_finished_runs=10**6)
    try:
        for i in range(2400):
            await store.put_resource(uuid.uuid4(), b"r")
            if i % 3 == 0:
                await store.claim_key(f"k{i}", b"v", 60)
            if i % 3 == 1:
                await finish(store, await start_run(store), events=0)
        kept = raw.zcard(prefix + "retained")
        assert 500 < kept < 2400 + 800 + 800  # trimmed, and more than a few kept
        used, counted = memory_of(raw, prefix), await store.retained_bytes()
        assert used <= counted <= budget
        assert raw.object("encoding", prefix + "retained") == b"skiplist"
    finally:
        await store.close()


async def test_the_count_is_exact_and_forgets_what_expired(prefix: str, raw: redis.Redis) -> None:
    store = RedisStore.from_url(REDIS_URL, prefix=prefix, retention=0.5, max_retained_bytes=10 * 1024 * KiB)
    try:
        written = []
        for _ in range(20):
            run, resource_id, session_id = await start_run(store), uuid.uuid4(), uuid.uuid4()
            await finish(store, run)
            await store.put_resource(resource_id, b"r" * 500)
            await store.claim_session(SessionRecord(id=session_id, history=["u"], owner="alice"))
            written += [f"run:{run.run_id}", f"resource:{resource_id}", f"session:{session_id}"]
        # In the order written (the oldest goes first), though many were written in the same millisecond.
        order: Any = raw.zrange(prefix + "retained", 0, -1)
        assert [item.decode() for item in order] == written
        sizes = sizes_of(raw, prefix)
        total = sizes.pop("total")
        assert len(sizes) == 60 and total == sum(sizes.values()) == await store.retained_bytes()
        assert raw.zcard(prefix + "retained") == 60
        assert all(n > 500 for n in sizes.values())
        await asyncio.sleep(0.7)  # all of it expires; the next write forgets it
        await store.put_resource(uuid.uuid4(), b"r")
        sizes = sizes_of(raw, prefix)
        assert len(sizes) == 2 and sizes["total"] == sum(n for item, n in sizes.items() if item != "total")
        assert raw.zcard(prefix + "retained") == 1 and raw.zcard(prefix + "finished") == 0
    finally:
        await store.close()


async def test_a_run_alone_over_the_bound_is_not_kept(prefix: str, raw: redis.Redis) -> None:
    store = RedisStore.from_url(REDIS_URL, prefix=prefix, max_retained_bytes=64 * KiB)
    try:
        small = await start_run(store)
        await finish(store, small)
        big = await start_run(store)
        await store.append_events(big.run_id, [event(i, 8 * KiB) for i in range(1, 17)])
        assert await store.get_run(big.run_id) is not None  # going: kept whatever its size
        await finish(store, big)  # 128 KiB once ended: it goes, and the older one before it
        assert await store.get_run(big.run_id) is None and await store.get_run(small.run_id) is None
        assert not [key for key in raw.scan_iter(match=prefix + "run:*")]
        assert await store.retained_bytes() == 0
    finally:
        await store.close()


async def test_max_retained_bytes_comes_from_the_settings(prefix: str) -> None:
    store = RedisStore.from_url(REDIS_URL, prefix=prefix)
    assert store.max_retained_bytes == Settings().max_retained_bytes
    store.configure(Settings(max_retained_bytes=20 * KiB))
    assert store.max_retained_bytes == 20 * KiB
    given = RedisStore.from_url(REDIS_URL, prefix=prefix, max_retained_bytes=30 * KiB)
    given.configure(Settings(max_retained_bytes=20 * KiB))
    assert given.max_retained_bytes == 30 * KiB  # given to the store: the settings do not override it
    try:
        runs = [await start_run(store) for _ in range(10)]
        for run in runs:
            await finish(store, run)
        kept = [run for run in runs if await store.get_run(run.run_id) is not None]
        assert 1 <= len(kept) <= 3  # ~6 KiB each
        assert await store.retained_bytes() <= 20 * KiB
    finally:
        await store.close()
        await given.close()


# owners -----------------------------------------------------------------------------------------------
async def test_concurrent_claims_over_two_connections_have_one_winner(prefix: str) -> None:
    first, second = (RedisStore.from_url(REDIS_URL, prefix=prefix) for _ in range(2))
    try:
        for _ in range(20):
            session_id = uuid.uuid4()
            claims = [
                (first if i % 2 else second).claim_session(
                    SessionRecord(id=session_id, history=[f"u{i}"], owner=f"owner-{i}")
                )
                for i in range(10)
            ]
            results = await asyncio.gather(*claims)
            owners = {result.owner for result in results}
            assert len(owners) == 1
            (owner,) = owners
            assert owner is not None
            winner = SessionRecord(id=session_id, history=[f"u{owner[6:]}"], owner=owner)
            assert all(result == winner for result in results)
            assert await first.get_session(session_id) == winner
    finally:
        await first.close()
        await second.close()


async def test_no_owner_and_an_owner_round_trip(store: RedisStore, prefix: str, raw: redis.Redis) -> None:
    anonymous, alices = uuid.uuid4(), uuid.uuid4()
    assert await store.claim_session(SessionRecord(id=anonymous, history=["u"])) == SessionRecord(
        id=anonymous, history=["u"]
    )
    assert not raw.hexists(f"{prefix}session:{anonymous}", "owner")  # no owner: no field
    claimed = await store.claim_session(SessionRecord(id=alices, owner="alice"))
    assert claimed.owner == "alice"
    # Each is its owner's only: None is an owner of its own for extend_session.
    assert await store.extend_session(anonymous, ["x"], owner="alice") is None
    assert await store.extend_session(alices, ["x"]) is None
    assert await store.extend_session(alices, ["x"], owner="bob") is None
    session = await store.extend_session(anonymous, ["v"], state="s")
    assert session == SessionRecord(id=anonymous, history=["u", "v"], state="s", owner=None)
    session = await store.extend_session(alices, ["v"], owner="alice")
    assert session == SessionRecord(id=alices, history=["v"], owner="alice")
    # put_session replaces history and state (the engine checked the owner first).
    replaced = SessionRecord(id=alices, history=["w"], state="t", owner="alice")
    await store.put_session(replaced)
    assert await store.get_session(alices) == replaced
    # Resources too.
    resource_id, owned_id = uuid.uuid4(), uuid.uuid4()
    await store.put_resource(resource_id, b"{}")
    await store.put_resource(owned_id, b"{}", owner="alice")
    assert await store.get_resource(resource_id) == ResourceRecord(b"{}", None)
    assert await store.get_resource(owned_id) == ResourceRecord(b"{}", "alice")
    assert not raw.exists(f"{prefix}resource:{resource_id}:owner")


async def test_a_refused_extension_writes_nothing(store: RedisStore, prefix: str, raw: redis.Redis) -> None:
    session_id = uuid.uuid4()
    await store.extend_session(session_id, ["u"], state="s", owner="alice")
    key = f"{prefix}session:{session_id}"
    before = (raw.hgetall(key), raw.lrange(key + ":history", 0, -1), raw.pttl(key))
    counted = await store.retained_bytes()
    await asyncio.sleep(0.05)
    assert await store.extend_session(session_id, ["evil"] * 100, state="evil", owner="mallory") is None
    after = (raw.hgetall(key), raw.lrange(key + ":history", 0, -1), raw.pttl(key))
    assert after[:2] == before[:2]
    assert after[2] < before[2]  # not even its TTL refreshed
    assert await store.retained_bytes() == counted
