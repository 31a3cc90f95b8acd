"""The in-memory store keeps what it retains under ``max_retained_bytes``; it never evicts a live run."""

from __future__ import annotations

import asyncio
import gc
import os
import tracemalloc
import uuid

import pytest

from acp_adapters import ACPService, AgentRegistry, Settings
from acp_adapters.core.memory_store import MemoryStore
from acp_adapters.core.models import Run, RunStatus, utc_now
from acp_adapters.core.store import EventRecord, ResourceRecord, RunRecord, SessionRecord

pytestmark = pytest.mark.anyio

KiB = 1024
MiB = 1024 * KiB


def chunk(n: int, size: int) -> EventRecord:
    """A ``message.part`` event of about ``size`` bytes that does not compress."""
    text = os.urandom(size // 2).hex().encode()
    return EventRecord("message.part", b'{"type":"message.part","n":%d,"c":"%s"}' % (n, text))


def run_event(type: str, run: Run) -> EventRecord:
    return EventRecord(type, b'{"type":"%s","run":%s}' % (type.encode(), run.model_dump_json().encode()))


async def start(store: MemoryStore, log_bytes: int = 0) -> Run:
    """A run with ``log_bytes`` of events, still going."""
    run = Run(agent_name="echo")
    await store.create_run(RunRecord(run=run), run_event("run.created", run))
    for n in range(log_bytes // (10 * KiB)):
        await store.append_events(run.run_id, [chunk(n, 10 * KiB)])
    return run


async def end(store: MemoryStore, run: Run) -> None:
    """End the run as the engine does: the new status and the event announcing it, as one step."""
    done = run.model_copy(update={"status": RunStatus.COMPLETED, "finished_at": utc_now()})
    changes = {"status": RunStatus.COMPLETED, "finished_at": done.finished_at}
    record = await store.transition(
        run.run_id, changes, expect={RunStatus.CREATED}, events=[run_event("run.completed", done)]
    )
    assert record is not None


async def test_two_hundred_runs_of_100_kib_stay_under_one_mib_and_the_active_run_stays() -> None:
    store = MemoryStore(max_retained_bytes=1 * MiB)
    active = await start(store, 300 * KiB)
    active_events = await store.read_events(active.run_id, 0)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        runs = []
        for _ in range(200):
            run = await start(store, 100 * KiB)
            await end(store, run)
            runs.append(run)
            assert store.retained_bytes <= 1 * MiB
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # What the store holds really is about what it counts (a few hundred KiB of slack for the
    # records it keeps of the runs it evicted, and the allocator's own).
    assert grown < 1.5 * MiB, f"{grown} bytes held for 1 MiB counted"
    assert store.retained_bytes > 800 * KiB  # it keeps as much as fits, not less
    kept = [run for run in runs if await store.get_run(run.run_id) is not None]
    assert 5 <= len(kept) <= 10
    assert kept == runs[-len(kept) :]  # the newest, all of them
    last = await store.read_events(runs[-1].run_id, 0)
    assert len(last) == 12 and last[-1].type == "run.completed"
    assert await store.read_events(runs[0].run_id, 0) == []
    # The run still going keeps every event, and may go on writing.
    for n in range(40):
        await store.append_events(active.run_id, [chunk(n, 10 * KiB)])
    record = await store.get_run(active.run_id)
    assert record is not None and record.run.status is RunStatus.CREATED
    assert (await store.read_events(active.run_id, 0))[: len(active_events)] == active_events
    assert await store.count_events(active.run_id) == len(active_events) + 40
    # It is counted once it ends (700 KiB), and the oldest runs make room for it.
    await end(store, active)
    assert 700 * KiB < store.retained_bytes <= 1 * MiB
    assert await store.get_run(runs[-1].run_id) is not None
    assert await store.get_run(runs[-8].run_id) is None
    assert (await store.read_events(active.run_id, 0))[-1].type == "run.completed"


async def test_a_run_over_the_whole_budget_is_evicted_when_it_ends() -> None:
    store = MemoryStore(max_retained_bytes=100 * KiB)
    run = await start(store, 200 * KiB)
    await end(store, run)
    assert store.retained_bytes == 0
    assert await store.get_run(run.run_id) is None


async def test_a_reader_waiting_on_an_evicted_run_gets_nothing() -> None:
    store = MemoryStore(max_retained_bytes=150 * KiB)
    first = await start(store, 100 * KiB)
    await end(store, first)
    count = await store.count_events(first.run_id)
    reader = asyncio.create_task(store.read_events(first.run_id, count, timeout=5))
    await asyncio.sleep(0.05)
    second = await start(store, 100 * KiB)
    await end(store, second)  # first goes
    assert await asyncio.wait_for(reader, 1) == []
    assert await store.get_run(first.run_id) is None


async def test_small_runs_packed_together_are_counted_and_read_back() -> None:
    store = MemoryStore(max_finished_runs=50)
    runs = []
    for _ in range(100):
        run = await start(store)
        await store.append_events(run.run_id, [chunk(0, 100)])
        await end(store, run)
        runs.append(run)
    for run in runs[50:]:
        events = await store.read_events(run.run_id, 0)
        assert [e.type for e in events] == ["run.created", "message.part", "run.completed"]
    assert [await store.get_run(run.run_id) for run in runs[:50]] == [None] * 50
    sizes = [len(b"\n".join(e.data for e in await store.read_events(run.run_id, 0))) for run in runs[50:]]
    assert store.retained_bytes == sum(sizes) + 50 * 256


async def test_sessions_resources_and_keys_count_and_go_oldest_first() -> None:
    store = MemoryStore(max_retained_bytes=64 * KiB)
    old_resource, new_resource = uuid.uuid4(), uuid.uuid4()
    await store.put_resource(old_resource, b"x" * 20 * KiB, owner="alice")
    session_id = uuid.uuid4()
    await store.extend_session(session_id, ["http://h/acp/resources/" + "u" * 100] * 100, owner="alice")
    assert await store.claim_key("alice:k1", b"v" * 1000, 60) is None
    counted = store.retained_bytes
    assert counted >= 20 * KiB + 100 * 100 + 1000
    await store.put_resource(new_resource, b"y" * 30 * KiB)  # over 64 KiB: the oldest, the resource, goes
    assert await store.get_resource(old_resource) is None
    assert await store.get_resource(new_resource) == ResourceRecord(b"y" * 30 * KiB, None)
    assert await store.get_session(session_id) is not None
    assert store.retained_bytes <= 64 * KiB
    # Finished runs go before any of them.
    run = await start(store)
    await store.append_events(run.run_id, [chunk(0, 10 * KiB)])
    await end(store, run)
    await store.put_resource(uuid.uuid4(), b"z" * 10 * KiB)
    assert await store.get_run(run.run_id) is None
    assert await store.get_session(session_id) is not None
    assert await store.claim_key("alice:k1", b"other", 60) == b"v" * 1000
    # Everything is dropped rather than going over.
    await store.put_resource(uuid.uuid4(), b"w" * 64 * KiB)
    assert store.retained_bytes == 0
    assert await store.get_session(session_id) is None
    assert await store.claim_key("alice:k1", b"other", 60) is None


async def test_replacing_or_extending_a_session_counts_its_new_size() -> None:
    store = MemoryStore()
    session_id = uuid.uuid4()
    await store.put_session(SessionRecord(id=session_id, history=["a" * 1000] * 10, owner="o"))
    big = store.retained_bytes
    await store.put_session(SessionRecord(id=session_id, history=["a" * 10], owner="o"))
    small = store.retained_bytes
    assert big - small == (10 * 1000 + 10 * 64) - (10 + 64)  # URLs' characters, and 64 bytes each
    assert await store.extend_session(session_id, ["b" * 500], state="s" * 100, owner="o") is not None
    assert store.retained_bytes == small + 500 + 64 + 100
    assert await store.extend_session(session_id, [], state="t" * 40, owner="o") is not None
    assert store.retained_bytes == small + 500 + 64 + 40
    # Another owner writes nothing, and counts nothing.
    assert await store.extend_session(session_id, ["c" * 5000], owner="mallory") is None
    assert store.retained_bytes == small + 500 + 64 + 40


async def test_keys_expire_after_their_ttl_and_free_their_bytes() -> None:
    store = MemoryStore()
    assert await store.claim_key("k", b"first", 0.2) is None
    assert await store.claim_key("k", b"second", 0.2) == b"first"
    held = store.retained_bytes
    assert held > 0
    await asyncio.sleep(0.3)
    assert await store.claim_key("other", b"v", 60) is None  # sweeps the expired one
    assert store.retained_bytes == held - len("k") - len(b"first") + len("other") + len(b"v")
    assert await store.claim_key("k", b"third", 60) is None
    assert await store.claim_key("k", b"fourth", 60) == b"third"


async def test_retention_and_count_eviction_free_their_bytes() -> None:
    store = MemoryStore(retention=0.2, max_finished_runs=2)
    for _ in range(5):
        run = await start(store, 10 * KiB)
        await end(store, run)
    assert 2 * 10 * KiB < store.retained_bytes < 3 * 11 * KiB  # two runs kept
    await store.put_resource(uuid.uuid4(), b"r" * 1000)
    await store.extend_session(uuid.uuid4(), ["u"])
    await asyncio.sleep(0.3)
    run = await start(store)
    await end(store, run)  # the sweep runs when a run ends
    assert (
        store.retained_bytes == len(b"\n".join(e.data for e in await store.read_events(run.run_id, 0))) + 256
    )


async def test_a_resource_read_is_a_use() -> None:
    store = MemoryStore(retention=0.4)
    kept, dropped = uuid.uuid4(), uuid.uuid4()
    await store.put_resource(kept, b"k")
    await store.put_resource(dropped, b"d")
    for _ in range(3):
        await asyncio.sleep(0.2)
        assert await store.get_resource(kept) is not None
    run = await start(store)
    await end(store, run)
    assert await store.get_resource(dropped) is None
    assert await store.get_resource(kept) == ResourceRecord(b"k")


def test_the_budget_comes_from_the_service_settings_unless_given() -> None:
    assert MemoryStore().max_retained_bytes == 256 * MiB
    settings = Settings(max_retained_bytes=5 * MiB)
    store = MemoryStore()
    ACPService(AgentRegistry(), store=store, settings=settings)
    assert store.max_retained_bytes == 5 * MiB
    given = MemoryStore(max_retained_bytes=7 * MiB)
    ACPService(AgentRegistry(), store=given, settings=settings)
    assert given.max_retained_bytes == 7 * MiB
