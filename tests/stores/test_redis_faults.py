"""The Redis store when Redis goes away: quick, clean :class:`StoreUnavailable`, then recovery by itself.

Each test runs against a private ``redis-server`` (see ``redis_server.py``) that it shuts down, freezes
and restarts; the machine's Redis is never touched.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from acp_adapters.core.models import Run, RunStatus
from acp_adapters.core.store import EventRecord, RunRecord, SessionRecord, Signal, StoreUnavailable
from acp_adapters.stores.redis import RedisStore
from tests.stores.redis_server import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
async def store(server: RedisServer) -> AsyncIterator[RedisStore]:
    store = RedisStore.from_url(server.url, prefix="faults:", timeout=1.0, outage_grace=1.0)
    await store.start()
    try:
        yield store
    finally:
        server.resume()
        await store.close()


def event(n: int) -> EventRecord:
    return EventRecord("generic", b'{"type":"generic","n":%d}' % n)


async def new_run(store: RedisStore) -> Run:
    run = Run(agent_name="echo")
    await store.create_run(RunRecord(run=run), event(0))
    return run


async def append_then_count(store: RedisStore, run_id: uuid.UUID) -> None:
    # Appends are sent in the background: a failed batch is reported by the next call on the run.
    await store.append_events(run_id, [event(1)])
    await store.count_events(run_id)


async def seconds_until_unavailable(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="the store is unreachable"):
        await asyncio.wait_for(call(), 30)
    return time.monotonic() - started


async def test_every_operation_fails_fast_while_redis_is_down_then_recovers(
    server: RedisServer, store: RedisStore
) -> None:
    run = await new_run(store)
    server.shutdown()
    run_id, other = run.run_id, uuid.uuid4()
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: store.create_run(RunRecord(run=Run(agent_name="echo")), event(0)),
        lambda: store.get_run(run_id),
        lambda: store.update_run(run_id, {"status": RunStatus.IN_PROGRESS}, expect={RunStatus.CREATED}),
        lambda: store.transition(run_id, {"status": RunStatus.FAILED}, expect={RunStatus.CREATED}, events=[]),
        lambda: append_then_count(store, run_id),
        lambda: store.read_events(run_id, 1),
        lambda: store.read_events(run_id, 1, timeout=10),
        lambda: store.count_events(run_id),
        lambda: store.send_signal(run_id, Signal("cancel")),
        lambda: store.get_session(other),
        lambda: store.put_session(SessionRecord(id=other)),
        lambda: store.extend_session(other, ["u"]),
        lambda: store.put_resource(other, b"x"),
        lambda: store.get_resource(other),
        lambda: store.renew_leases([other], 1.0),
        lambda: store.find_lost_runs(),
    ]
    durations = [await seconds_until_unavailable(call) for call in calls]
    # Refused connections fail at once; the blocked read gives Redis ``outage_grace`` (1 s) to return.
    assert max(durations) < 2.5, durations
    assert sorted(durations)[len(durations) // 2] < 0.5, durations
    # What this process wrote of a run it executes, Redis had: its followers (the run's stream, which
    # waits) read it from the process. (A one-shot read, the events list, asks Redis: it failed above.)
    assert await store.read_events(run_id, 0, timeout=1) == [event(0)]

    server.start()  # empty: SHUTDOWN NOSAVE lost everything
    again = await new_run(store)
    await store.append_events(again.run_id, [event(1)])
    assert await store.count_events(again.run_id) == 2
    assert await store.read_events(again.run_id, 0) == [event(0), event(1)]
    assert await store.update_run(again.run_id, {"status": RunStatus.IN_PROGRESS}) is not None


async def test_connections_left_over_from_before_a_restart_are_replaced_unseen(
    server: RedisServer, store: RedisStore
) -> None:
    runs = await asyncio.gather(*(new_run(store) for _ in range(10)))  # ten pooled connections
    server.shutdown()
    server.start()
    # Each stale connection fails once and is reconnected by the retry: no caller sees it.
    assert await asyncio.gather(*(store.get_run(run.run_id) for run in runs)) == [None] * 10
    again = await asyncio.gather(*(new_run(store) for _ in range(10)))
    assert all(
        record is not None for record in await asyncio.gather(*(store.get_run(r.run_id) for r in again))
    )


async def test_a_blocked_reader_gives_up_soon_when_redis_goes_away(
    server: RedisServer, store: RedisStore
) -> None:
    run = await new_run(store)
    reader = asyncio.create_task(store.read_events(run.run_id, 1, timeout=30))
    await asyncio.sleep(0.3)
    stopped = time.monotonic()
    server.shutdown()
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(reader, 10)
    assert time.monotonic() - stopped < 3.0


async def test_a_blocked_reader_rides_out_a_short_restart(server: RedisServer) -> None:
    store = RedisStore.from_url(server.url, prefix="faults:", timeout=1.0, outage_grace=5.0)
    other = RedisStore.from_url(server.url, prefix="faults:", timeout=1.0)
    try:
        run = await new_run(store)
        reader = asyncio.create_task(store.read_events(run.run_id, 1, timeout=30))
        await asyncio.sleep(0.3)
        server.shutdown()
        await asyncio.sleep(0.5)
        server.start()
        # The data went with the restart: the run comes back (as a worker would re-create it) and goes on.
        await other.create_run(RunRecord(run=run), event(0))
        await other.append_events(run.run_id, [event(1)])
        assert await asyncio.wait_for(reader, 10) == [event(1)]
    finally:
        await store.close()
        await other.close()


async def test_signals_reach_a_waiting_worker_after_redis_restarts(
    server: RedisServer, store: RedisStore
) -> None:
    sender = RedisStore.from_url(server.url, prefix="faults:", timeout=1.0)
    try:
        run = await new_run(store)
        receiver = asyncio.create_task(store.receive_signal(run.run_id))
        await asyncio.sleep(0.3)
        server.shutdown()
        await asyncio.sleep(1.0)
        assert not receiver.done()  # the executing worker keeps waiting through the outage
        server.start()
        await sender.create_run(RunRecord(run=run), event(0))
        sent = time.monotonic()
        await sender.send_signal(run.run_id, Signal("cancel"))
        assert await asyncio.wait_for(receiver, 10) == Signal("cancel")
        assert time.monotonic() - sent < 4.0
    finally:
        await sender.close()


async def test_a_frozen_redis_gives_store_unavailable_within_the_timeout(
    server: RedisServer, store: RedisStore
) -> None:
    run = await new_run(store)
    server.pause()
    try:
        duration = await seconds_until_unavailable(lambda: store.get_run(run.run_id))
        assert 0.9 < duration < 2.5  # timeout=1.0: the deadline, not a hang
        duration = await seconds_until_unavailable(lambda: append_then_count(store, run.run_id))
        assert duration < 2.5
    finally:
        server.resume()
    # The answers that were pending arrive late on connections that were dropped: nothing is mixed up.
    record = await store.get_run(run.run_id)
    assert record is not None and record.run.run_id == run.run_id
    events = await store.read_events(run.run_id, 0)
    assert events[0] == event(0)


async def test_cancelling_a_waiter_during_an_outage_ends_it(server: RedisServer, store: RedisStore) -> None:
    run = await new_run(store)
    waiters = [
        asyncio.create_task(store.receive_signal(run.run_id)),
        asyncio.create_task(store.read_events(run.run_id, 1, timeout=30)),
    ]
    await asyncio.sleep(0.2)
    server.shutdown()
    await asyncio.sleep(0.3)
    for waiter in waiters:
        waiter.cancel()
    _, pending = await asyncio.wait(waiters, timeout=2)
    assert not pending
