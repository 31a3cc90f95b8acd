"""What the Django database store does beyond the conformance suite (tests/stores): workers in other
threads with their own event loops, concurrent appends, outages, lost connections, deleted runs."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from django.db import connections
from pytest_django import DjangoDbBlocker

from acp_adapters.core.models import Run, RunStatus
from acp_adapters.core.store import EventRecord, RunRecord, Signal, StoreUnavailable
from acp_adapters.django.db import models as db
from acp_adapters.django.db import ops as db_ops
from acp_adapters.django.db.store import DjangoStore
from tests.django_store import settings as test_settings
from tests.django_store.conftest import StoreFactory

pytestmark = pytest.mark.anyio

T = TypeVar("T")


def event(n: object, type: str = "generic") -> EventRecord:
    return EventRecord(type, f'{{"type":"{type}","n":"{n}"}}'.encode())


async def new_run(store: DjangoStore, status: RunStatus = RunStatus.CREATED) -> Run:
    run = Run(agent_name="echo", status=status)
    await store.create_run(RunRecord(run=run), event("created", "run.created"))
    return run


def in_thread(alias: str, work: Callable[[DjangoStore], Awaitable[T]]) -> Callable[[], T]:
    """Start ``work`` in a new thread with its own event loop and store (a worker process, nearly);
    the returned function joins it and gives its result."""
    result: dict[str, Any] = {}

    async def main() -> None:
        store = DjangoStore(alias)
        try:
            result["value"] = await work(store)
        except BaseException as exc:
            result["error"] = exc
        finally:
            await store.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),))
    thread.start()

    def join() -> T:
        thread.join(30)
        assert not thread.is_alive(), "the worker thread did not finish"
        if "error" in result:
            raise result["error"]
        return result["value"]  # type: ignore[no-any-return]  # what work() returned

    return join


async def test_a_reader_in_another_thread_is_woken(alias: str, make_store: StoreFactory) -> None:
    store = make_store()
    run = await new_run(store)

    async def read(reader: DjangoStore) -> tuple[list[EventRecord], float]:
        events = await reader.read_events(run.run_id, 1, timeout=10)
        return events, time.monotonic()

    join = in_thread(alias, read)
    await asyncio.sleep(0.5)
    appended = time.monotonic()
    await store.append_events(run.run_id, [event(1)])
    events, woken = await asyncio.to_thread(join)
    assert events == [event(1)]
    # The reader's process learns of the append by its poll (backed off to at most 0.25 s).
    assert woken - appended < 0.6


async def test_compare_and_set_across_threads_has_one_winner(alias: str, make_store: StoreFactory) -> None:
    store = make_store()
    run = await new_run(store, RunStatus.AWAITING)

    async def resume_ten_times(worker: DjangoStore) -> int:
        attempts = [
            worker.update_run(run.run_id, {"status": RunStatus.IN_PROGRESS}, expect={RunStatus.AWAITING})
            for _ in range(10)
        ]
        return sum(result is not None for result in await asyncio.gather(*attempts))

    joins = [in_thread(alias, resume_ten_times) for _ in range(5)]
    wins = [await asyncio.to_thread(join) for join in joins]
    assert sum(wins) == 1
    record = await store.get_run(run.run_id)
    assert record is not None and record.run.status is RunStatus.IN_PROGRESS


@pytest.mark.parametrize("write_behind", [False, True], ids=["commit-each", "write-behind"])
async def test_concurrent_appends_number_events_without_gaps(
    make_store: StoreFactory, write_behind: bool
) -> None:
    workers = [make_store(write_behind=write_behind) for _ in range(4)]
    run = await new_run(workers[0])

    async def append(worker: int, batch: int) -> None:
        await workers[worker].append_events(
            run.run_id, [event(f"{worker}.{batch}.a"), event(f"{worker}.{batch}.b")]
        )

    await asyncio.gather(*(append(w, b) for w in range(4) for b in range(25)))
    for worker in workers:
        await worker.batcher.settle(run.run_id)
    events = await workers[1].read_events(run.run_id, 0)
    assert len(events) == 201 and await workers[2].count_events(run.run_id) == 201
    sent = {event(f"{w}.{b}.{part}") for w in range(4) for b in range(25) for part in "ab"}
    assert set(events[1:]) == sent
    for first, second in zip(events[1::2], events[2::2], strict=True):  # each batch stays together, in order
        assert first.data.replace(b".a", b".b") == second.data


@pytest.mark.parametrize("dead", [test_settings.DEAD_POSTGRES, test_settings.DEAD_SQLITE])
async def test_an_unreachable_database_raises_store_unavailable_quickly(
    dead: str, django_db_blocker: DjangoDbBlocker
) -> None:
    django_db_blocker.unblock()  # no test database: these aliases lead nowhere
    store = DjangoStore(dead, timeout=5, write_behind=False)  # a queued append fails later: see below
    run = Run(agent_name="echo")
    try:
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: store.create_run(RunRecord(run=run), event(0)),
            lambda: store.get_run(run.run_id),
            lambda: store.update_run(run.run_id, {"status": RunStatus.FAILED}),
            lambda: store.append_events(run.run_id, [event(1)]),
            lambda: store.read_events(run.run_id, 0, timeout=5),
            lambda: store.send_signal(run.run_id, Signal("cancel")),
            lambda: store.extend_session(uuid.uuid4(), ["u"]),
            lambda: store.get_resource(uuid.uuid4()),
            lambda: store.find_lost_runs(),
        ]
        for call in calls:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="unreachable"):
                await call()
            assert time.monotonic() - started < 3.0
    finally:
        await store.close()


@pytest.mark.postgres
async def test_the_store_reconnects_after_its_connections_are_killed(postgres: str) -> None:
    store = DjangoStore(postgres, threads=2, write_behind=False)
    run = await new_run(store)
    assert await store.get_run(run.run_id) is not None

    def kill_others() -> int:
        try:
            with connections[postgres].cursor() as cursor:
                cursor.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                row = cursor.fetchone()
                return int(row[0]) if row else 0
        finally:
            connections[postgres].close()

    try:
        assert await asyncio.to_thread(kill_others) >= 1
        # Reads are retried on a new connection; a write fails at most once, then works.
        assert await store.get_run(run.run_id) is not None
        for attempt in range(3):
            try:
                await store.append_events(run.run_id, [event("after")])
                break
            except StoreUnavailable:
                assert attempt == 0
        assert (await store.read_events(run.run_id, 1))[-1] == event("after")
    finally:
        await store.close()


async def test_a_reader_of_a_deleted_run_returns_at_once(alias: str, make_store: StoreFactory) -> None:
    store, other = make_store(), make_store()
    run = await new_run(store)
    reader = asyncio.create_task(other.read_events(run.run_id, 1, timeout=30))
    await asyncio.sleep(0.3)
    await asyncio.to_thread(db_ops.delete_runs, alias, db.Run.objects.using(alias).filter(pk=run.run_id))
    started = time.monotonic()
    assert await asyncio.wait_for(reader, 5) == []
    assert time.monotonic() - started < 1.0


def _delete_run(alias: str, run_id: uuid.UUID) -> None:
    try:
        db_ops.delete_runs(alias, db.Run.objects.using(alias).filter(pk=run_id))
    finally:
        connections[alias].close()


async def test_signals_cross_threads(alias: str, make_store: StoreFactory) -> None:
    store = make_store()
    run = await new_run(store)

    async def receive(worker: DjangoStore) -> list[Signal]:
        return [await worker.receive_signal(run.run_id) for _ in range(2)]

    join = in_thread(alias, receive)
    await asyncio.sleep(0.3)
    await store.send_signal(run.run_id, Signal("resume", b'{"n":1}'))
    await store.send_signal(run.run_id, Signal("cancel"))
    assert await asyncio.to_thread(join) == [Signal("resume", b'{"n":1}'), Signal("cancel")]


@pytest.mark.postgres
async def test_notifications_wake_a_reader_before_any_poll(postgres: str) -> None:
    writer = DjangoStore(postgres)
    # The poll alone would take 5 s: a quick wake-up can only come from the notification.
    reader = DjangoStore(postgres, poll_interval=5, max_poll_interval=5)
    try:
        assert writer.listens and reader.listens
        run = await new_run(writer)
        waiting = asyncio.create_task(reader.read_events(run.run_id, 1, timeout=10))
        await asyncio.sleep(0.5)
        appended = time.monotonic()
        await writer.append_events(run.run_id, [event(1)])
        assert await asyncio.wait_for(waiting, 5) == [event(1)]
        assert time.monotonic() - appended < 0.3
        receiving = asyncio.create_task(reader.receive_signal(run.run_id))
        await asyncio.sleep(0.3)
        sent = time.monotonic()
        await writer.send_signal(run.run_id, Signal("cancel"))
        assert await asyncio.wait_for(receiving, 5) == Signal("cancel")
        assert time.monotonic() - sent < 0.3
    finally:
        await writer.close()
        await reader.close()


@pytest.mark.postgres
async def test_a_lost_listening_connection_leaves_the_poll_then_comes_back(postgres: str) -> None:
    writer, reader = DjangoStore(postgres), DjangoStore(postgres)
    try:
        run = await new_run(writer)
        first = asyncio.create_task(reader.read_events(run.run_id, 1, timeout=10))

        def notified() -> bool:  # read afresh each time (the listener sets it between awaits)
            return reader.watcher.notified

        await asyncio.sleep(0.5)
        assert notified()

        def kill_listener() -> int:
            try:
                with connections[postgres].cursor() as cursor:
                    cursor.execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND query LIKE 'LISTEN%%'"
                    )
                    row = cursor.fetchone()
                    return int(row[0]) if row else 0
            finally:
                connections[postgres].close()

        assert await asyncio.to_thread(kill_listener) >= 1
        await asyncio.sleep(0.2)
        assert not notified()  # the poll is back to its quick pace
        await writer.append_events(run.run_id, [event(1)])
        assert await asyncio.wait_for(first, 2) == [event(1)]
        # The listener reconnects by itself.
        for _ in range(50):
            await reader.read_events(run.run_id, 2, timeout=0.1)
            if notified():
                break
        assert notified()
    finally:
        await writer.close()
        await reader.close()


async def test_write_behind_batches_keeps_order_and_settles_before_a_status_change(
    make_store: StoreFactory,
) -> None:
    store, other = make_store(), make_store()
    run = await new_run(store)
    queries = [0]
    flush = store._flush

    async def counted(run_id: uuid.UUID, events: list[EventRecord], changes: dict[str, Any]) -> None:
        queries[0] += 1
        await flush(run_id, events, changes)

    store.batcher._flush_batch = counted
    for n in range(2000):
        await store.append_events(run.run_id, [event(n, "message.part")])
    # This process reads its own writes at once; the events went in a few batches.
    assert await store.count_events(run.run_id) == 2001
    assert queries[0] < 200
    await store.append_events(run.run_id, [event("last")])
    # Whoever sees the new status sees every event appended before it.
    assert await store.update_run(run.run_id, {"status": RunStatus.COMPLETED}) is not None
    events = await other.read_events(run.run_id, 0)
    assert events[1:] == [event(n, "message.part") for n in range(2000)] + [event("last")]


async def test_write_behind_wakes_readers_of_other_processes(make_store: StoreFactory) -> None:
    store, other = make_store(write_behind=True), make_store()
    run = await new_run(store)
    reader = asyncio.create_task(other.read_events(run.run_id, 1, timeout=10))
    await asyncio.sleep(0.3)
    await store.append_events(run.run_id, [event(1)])
    assert await asyncio.wait_for(reader, 5) == [event(1)]


@pytest.mark.parametrize("dead", [test_settings.DEAD_SQLITE])
async def test_write_behind_reports_a_lost_batch_on_the_next_call(
    dead: str, django_db_blocker: DjangoDbBlocker
) -> None:
    django_db_blocker.unblock()
    store = DjangoStore(dead, write_behind=True, timeout=5)
    store.batcher.retries = 0
    run_id = uuid.uuid4()
    try:
        await store.append_events(run_id, [event(1)])  # queued: the failure comes later
        with pytest.raises(StoreUnavailable):
            await store.update_run(run_id, {"status": RunStatus.FAILED})
        # Reported once; the store goes on (and fails again while the database is away).
        with pytest.raises(StoreUnavailable):
            await store.count_events(run_id)
    finally:
        await store.close()
        django_db_blocker.restore()


async def test_a_run_whose_output_holds_nul_is_kept(make_store: StoreFactory) -> None:
    from acp_adapters.core.models import Message, MessagePart

    store, other = make_store(), make_store()
    run = await new_run(store)
    output = [Message(role="agent/echo", parts=[MessagePart(content="before\x00after")])]
    assert await store.update_run(run.run_id, {"status": RunStatus.COMPLETED, "output": output}) is not None
    record = await other.get_run(run.run_id)
    assert record is not None and record.run.output[0].parts[0].content == "before\x00after"


async def test_a_query_that_completes_as_its_task_is_cancelled_still_cancels_the_task(
    make_store: StoreFactory,
) -> None:
    """The task's cancellation wins over the query's result, whatever the Python: with
    ``asyncio.wait_for`` as the deadline, Python 3.10 and 3.11 returned the result and dropped the
    cancellation when both came in the same turn of the loop (an engine's lease keeper then never
    stopped, and closing the engine waited for it forever)."""
    store = make_store()
    loop = asyncio.get_running_loop()
    task: asyncio.Task[int] | None = None

    def query(using: str) -> int:
        assert task is not None
        loop.call_soon_threadsafe(task.cancel)  # queued before the query's result
        return 1

    task = asyncio.ensure_future(store._query(query))
    with pytest.raises(asyncio.CancelledError):
        await task
