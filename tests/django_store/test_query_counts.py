"""What a run costs the database store on PostgreSQL, in statements and transactions: pinned.

A sync echo run, an async run (its creation and execution, then one poll ``GET /runs/{id}``) and the
events of a stream are driven through the neutral service (the code every framework adapter calls),
and every statement the store's threads send is counted, with the transactions they make. The bounds
are the counts once the store was made lean (docs/performance.md, "The database store's queries"):
a change that adds a query to a run fails here, and must say why in the table.

``pytest tests/django_store/test_query_counts.py -s`` prints the statements of each measured step.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

from acp_adapters import ACPService, AgentRegistry, Settings
from acp_adapters.core.http import Request, Response, StreamResponse
from acp_adapters.core.models import Run, RunStatus
from acp_adapters.core.store import EventRecord, RunRecord, Store
from acp_adapters.django.db.store import DjangoStore
from acp_adapters.models import Message, MessagePart
from tests.django_store.conftest import StoreFactory
from tests.helpers import run_body, sse_data

pytestmark = pytest.mark.anyio


#: What only the watcher's poll of every waited-on run's counters selects (ops.counters).
_POLL = '"signal_count" FROM "acp_adapters_run" WHERE "acp_adapters_run"."id" IN'
#: The events' table, as statements name it.
_EVENTS_TABLE = '"acp_adapters_runevent"'


@dataclass
class Counted:
    """Statements and transactions seen while counting."""

    statements: list[tuple[str, bool]] = field(default_factory=list)  # (sql, inside a transaction)
    commits: int = 0
    polls: int = 0
    #: Connections opened.
    connections: int = 0

    @property
    def queries(self) -> int:
        return len(self.statements)

    @property
    def transactions(self) -> int:
        """Atomic blocks (one commit each) plus the statements that ran on their own (autocommit)."""
        return self.commits + sum(1 for _, atomic in self.statements if not atomic)

    def __str__(self) -> str:
        lines = [f"{self.queries} queries, {self.transactions} transactions (and {self.polls} polls)"]
        lines += [("  [tx] " if atomic else "  ") + sql[:160] for sql, atomic in self.statements]
        return "\n".join(lines)


class QueryCounter:
    """Counts what every connection to ``alias`` opened from now on sends (the store's threads each
    open their own): Django's ``CaptureQueriesContext`` sees one connection only."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.current: Counted | None = None
        connection_created.connect(self._created)

    def close(self) -> None:
        connection_created.disconnect(self._created)

    def _created(self, sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
        if connection.alias != self.alias:
            return
        if self.current is not None:
            self.current.connections += 1

        def record(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
            if self.current is not None:
                if _POLL in sql:  # the watcher's safety-net poll: per process every 2 s, not per run
                    self.current.polls += 1
                else:
                    self.current.statements.append((sql, connection.in_atomic_block))
            return execute(sql, params, many, context)

        connection.execute_wrappers.append(record)
        commit = connection.commit

        def counted_commit() -> None:
            if self.current is not None:
                self.current.commits += 1
            commit()

        connection.commit = counted_commit  # type: ignore[method-assign]  # counts, then commits

    @contextmanager
    def counting(self) -> Iterator[Counted]:
        self.current = counted = Counted()
        try:
            yield counted
        finally:
            self.current = None


def registry() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    async def echo(input: list[Message]) -> AsyncIterator[Message]:
        for message in input:
            yield message

    @agents.agent()
    async def parts(input: list[Message]) -> AsyncIterator[MessagePart]:
        for index in range(int(input[0].text)):
            yield MessagePart(content=str(index))

    @agents.agent(name="echo-then-wait")
    async def echo_then_wait(input: list[Message]) -> AsyncIterator[Message]:
        yield input[0]
        await RELEASE.wait()

    return agents


#: What ``echo-then-wait`` waits for after its message.
RELEASE = asyncio.Event()


class Client:
    def __init__(self, service: ACPService) -> None:
        self.service = service

    async def __call__(self, method: str, path: str, body: Any = None) -> Response | StreamResponse:
        data = json.dumps(body).encode() if body is not None else b""
        return await self.service.handle(Request(method, path, "http://test/acp", "", {}, data, None))

    async def settled(self) -> None:
        """Wait until no run executes (its last writes are part of what it costs)."""
        engine = self.service.engine
        for _ in range(500):
            if not engine._executions:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("a run is still executing")


@pytest.fixture
async def client(postgres: str) -> AsyncIterator[tuple[Client, QueryCounter]]:
    counter = QueryCounter(postgres)
    # Leases renewed once at start: none falls in a measured step.
    store = DjangoStore(postgres)
    service = ACPService(registry(), store=store, settings=Settings(lease_ttl=600))
    try:
        call = Client(service)
        await call("GET", "/ping")
        await call("POST", "/runs", run_body("echo"))  # warm: connections opened, the lease loop ran
        await call.settled()
        await asyncio.sleep(0.3)  # the lease keeper's first look for lost runs (which may fail some) is over
        # Listening: the poll for other processes' signals slows to its safety pace (every 2 s), so a
        # measured run does not meet one by chance.
        for _ in range(500):
            if store.watcher.notified:
                break
            await asyncio.sleep(0.01)
        assert store.watcher.notified
        yield call, counter
    finally:
        await service.aclose()
        counter.close()


async def sync_run(call: Client, counter: QueryCounter) -> Counted:
    with counter.counting() as counted:
        response = await call("POST", "/runs", run_body("echo"))
        await call.settled()
    assert isinstance(response, Response) and response.status == 200
    assert json.loads(response.body)["status"] == "completed"
    return counted


async def async_run(call: Client, counter: QueryCounter) -> tuple[Counted, Counted]:
    with counter.counting() as created:
        response = await call("POST", "/runs", run_body("echo", mode="async"))
        await call.settled()
    assert isinstance(response, Response) and response.status == 202
    run_id = json.loads(response.body)["run_id"]
    with counter.counting() as polled:
        response = await call("GET", f"/runs/{run_id}")
    assert isinstance(response, Response) and json.loads(response.body)["status"] == "completed"
    return created, polled


async def stream_run(call: Client, counter: QueryCounter, parts: int) -> Counted:
    with counter.counting() as counted:
        response = await call("POST", "/runs", run_body("parts", str(parts), mode="stream"))
        assert isinstance(response, StreamResponse)
        events = sse_data(b"".join([chunk async for chunk in response.body]))
        await call.settled()
    assert events[-1]["type"] == "run.completed"
    assert sum(1 for event in events if event["type"] == "message.part") == parts
    return counted


def report(name: str, counted: Counted) -> None:
    print(f"\n--- {name}: {counted}")


async def test_a_sync_run(client: tuple[Client, QueryCounter]) -> None:
    counted = await sync_run(*client)
    report("sync echo run", counted)
    # Nobody else can know of it before its answer: created at its end, with all its events, in one
    # statement (a session's run, or one that lasts, is created first: see docs/performance.md).
    assert counted.queries <= 1
    assert counted.transactions <= 1


async def test_an_async_run_and_a_poll(client: tuple[Client, QueryCounter]) -> None:
    created, polled = await async_run(*client)
    report("async echo run", created)
    report("poll", polled)
    assert created.queries <= 2
    assert created.transactions <= 2
    assert polled.queries <= 1
    assert polled.transactions <= 1


async def test_stream_events(client: tuple[Client, QueryCounter]) -> None:
    one = await stream_run(*client, 1)
    many = await stream_run(*client, 201)
    report("stream of 1 part", one)
    report("stream of 201 parts", many)
    per_event = (many.queries - one.queries) / 200
    print(f"per event: {per_event:.3f} queries, {(many.transactions - one.transactions) / 200:.3f} tx")
    assert per_event <= 0.25  # batches vary with timing: 0.01-0.04 measured


async def test_the_executing_process_reads_its_runs_events_without_reading_them_back(
    client: tuple[Client, QueryCounter],
) -> None:
    """The stream of a run executed here reads its events from the process's log of what it wrote, not
    back from the database (a read per batch before)."""
    counted = await stream_run(*client, 2000)
    report("stream of 2000 parts", counted)
    reads = [sql for sql, _ in counted.statements if sql.startswith("SELECT") and _EVENTS_TABLE in sql]
    # At most one: after the run's end (its log goes with it), if the stream was busy sending when it came.
    assert len(reads) <= 1, reads
    assert counted.queries <= 100  # its creation, its batches, its ending


async def test_a_write_by_another_process_is_read_from_the_database_in_its_place(
    alias: str, make_store: StoreFactory
) -> None:
    """The log of a run is kept while every event of the run was written here: one written by another
    process is read from the database at its index, and the log is dropped once a write here shows it
    is no longer whole."""
    mine, other = make_store(), make_store()
    run = Run(agent_name="echo")
    await mine.create_run(RunRecord(run=run), _event(0))
    await mine.append_events(run.run_id, [_event(1)])
    await mine.batcher.settle(run.run_id)
    await other.append_events(run.run_id, [_event(2)])
    await other.batcher.settle(run.run_id)
    # A follower reads what it wrote, so far; a one-shot read (the events list) reads the database: all.
    assert await mine.read_events(run.run_id, 0, timeout=5) == [_event(0), _event(1)]
    assert await mine.read_events(run.run_id, 0) == [_event(0), _event(1), _event(2)]
    assert await mine.read_events(run.run_id, 2, timeout=5) == [_event(2)]  # then the database
    await mine.append_events(run.run_id, [_event(3)])
    await mine.batcher.settle(run.run_id)
    assert mine._logs.get(run.run_id) is None
    assert await mine.read_events(run.run_id, 0) == [_event(n) for n in range(4)]


async def test_the_output_of_a_run_that_goes_on_is_written_with_its_messages_events(
    client: tuple[Client, QueryCounter],
) -> None:
    """A message's output is held for the run's next write (its ending, for a short run), but not for
    longer than its events: a run that goes on shows it in its snapshot as soon as they are written."""
    call, _ = client
    RELEASE.clear()
    response = await call("POST", "/runs", run_body("echo-then-wait", "hi", mode="async"))
    assert isinstance(response, Response) and response.status == 202
    run_id = json.loads(response.body)["run_id"]
    try:
        for _ in range(200):
            polled = await call("GET", f"/runs/{run_id}")
            assert isinstance(polled, Response)
            run = json.loads(polled.body)
            if run["output"]:
                break
            await asyncio.sleep(0.01)
        assert run["status"] == "in-progress" and run["output"][0]["parts"][0]["content"] == "hi", run
    finally:
        RELEASE.set()
    await call.settled()
    done = await call("GET", f"/runs/{run_id}")
    assert isinstance(done, Response)
    assert json.loads(done.body)["status"] == "completed" and len(json.loads(done.body)["output"]) == 1


@pytest.mark.parametrize("warm", [True, False], ids=["started", "not warmed"])
async def test_a_started_worker_opens_nothing_at_its_first_run(postgres: str, warm: bool) -> None:
    """Once the store has started (the engine starts it with the worker: lifespan, gunicorn's hook), a
    worker's first run costs the database what its second does: its thread's connection is open and the
    listener is up (without it, waiters poll fast). Without the warm-up (``Store.start`` doing nothing,
    as before), the first run opens the connection. (One store thread: with more, which thread a query
    lands on, and so whether it opens a connection, depends on timing.)"""
    counter = QueryCounter(postgres)
    store = DjangoStore(postgres, threads=1)
    if not warm:
        store.start = Store.start.__get__(store)  # type: ignore[method-assign]
    service = ACPService(registry(), store=store, settings=Settings(lease_ttl=600))
    try:
        call = Client(service)
        with counter.counting() as started:
            await service.engine.ensure_started()
            await asyncio.sleep(0.3)  # (the lease keeper's first look for lost runs)
        assert store.watcher.notified is warm
        first = await sync_run(call, counter)
        second = await sync_run(call, counter)
        report("start", started)
        report("first sync echo run", first)
        report("second", second)
        assert (second.queries, second.connections) == (1, 0)
        if warm:
            assert started.connections == 1
            assert (first.queries, first.connections) == (1, 0)
        else:  # (the lease keeper's first look for lost runs opened it, or the first run does)
            assert started.connections + first.connections == 1
    finally:
        await service.aclose()
        counter.close()


# The merged write (events still queued + the change, one statement) keeps the promises of two -------
def _event(n: int) -> EventRecord:
    return EventRecord("generic", f'{{"type":"generic","n":{n}}}'.encode())


async def _stored(store: DjangoStore, run_id: uuid.UUID) -> list[EventRecord]:
    return await store.read_events(run_id, 0)


async def test_queued_events_go_first_when_the_change_applies(alias: str, make_store: StoreFactory) -> None:
    store = make_store()
    run = Run(agent_name="echo")
    await store.create_run(RunRecord(run=run), _event(0))
    queued, ending = [_event(1), _event(2)], [_event(3)]
    record = await store._change_run_with(
        run.run_id, queued, {"status": RunStatus.COMPLETED}, {RunStatus.CREATED}, ending
    )
    assert record is not None and record.run.status is RunStatus.COMPLETED
    assert await _stored(store, run.run_id) == [_event(0), *queued, *ending]
    assert await store.count_events(run.run_id) == 4


async def test_queued_events_are_written_when_the_status_check_fails(
    alias: str, make_store: StoreFactory
) -> None:
    store = make_store()
    run = Run(agent_name="echo")
    await store.create_run(RunRecord(run=run), _event(0))
    record = await store._change_run_with(
        run.run_id, [_event(1)], {"status": RunStatus.COMPLETED}, {RunStatus.AWAITING}, [_event(2)]
    )
    assert record is None
    assert await _stored(store, run.run_id) == [_event(0), _event(1)]
    assert (await store.get_run(run.run_id)).run.status is RunStatus.CREATED  # type: ignore[union-attr]  # it exists


async def test_a_change_by_another_process_in_between_is_compared_against(
    alias: str, make_store: StoreFactory
) -> None:
    """This process's view of the run is stale (another worker changed it): the queued events are
    written by the first attempt, the change by a second one that read the row, after the others."""
    mine, other = make_store(), make_store()
    run = Run(agent_name="echo")
    await mine.create_run(RunRecord(run=run), _event(0))
    await other.transition(
        run.run_id, {"status": RunStatus.IN_PROGRESS}, expect={RunStatus.CREATED}, events=[_event(1)]
    )
    # ``mine`` last saw the run created (version 0), which the check allows: its first attempt trusts
    # that and loses the compare-and-set.
    expect = {RunStatus.CREATED, RunStatus.IN_PROGRESS}
    record = await mine._change_run_with(
        run.run_id, [_event(2)], {"status": RunStatus.COMPLETED}, expect, [_event(3)]
    )
    assert record is not None and record.run.status is RunStatus.COMPLETED
    assert await _stored(mine, run.run_id) == [_event(n) for n in range(4)]
    refused = await mine._change_run_with(
        run.run_id, [_event(4)], {"status": RunStatus.FAILED}, {RunStatus.IN_PROGRESS}, [_event(5)]
    )
    assert refused is None
    assert await _stored(mine, run.run_id) == [_event(n) for n in range(5)]


# NOTIFY only where someone listens ---------------------------------------------------------------
async def _notifications(postgres: str, during: Callable[[], Awaitable[None]]) -> list[str]:
    """The payloads on the store's channel while ``during`` runs (and 0.3 s after)."""
    import psycopg
    from django.db import connections

    from acp_adapters.django.db.listen import CHANNEL

    params = {
        key: value
        for key, value in connections[postgres].get_connection_params().items()
        if key not in ("context", "cursor_factory", "prepare_threshold", "server_side_binding")
    }
    heard: list[str] = []
    async with await psycopg.AsyncConnection.connect(**params, autocommit=True) as conn:
        # A handler, not notifies(timeout=...) (psycopg 3.2+): the next query delivers what arrived.
        conn.add_notify_handler(lambda notification: heard.append(notification.payload))
        await conn.execute(f"LISTEN {CHANNEL}")
        await during()
        await asyncio.sleep(0.3)
        await conn.execute("SELECT 1")
    return heard


async def test_appends_notify_only_once_another_process_waits(postgres: str) -> None:
    writer, reader = DjangoStore(postgres), DjangoStore(postgres)
    try:
        await _notify_only_when_watched(postgres, writer, reader)
    finally:
        await writer.close()
        await reader.close()


async def _notify_only_when_watched(postgres: str, writer: DjangoStore, reader: DjangoStore) -> None:
    """The writer's appends and status changes send nothing until the reader (another process) waits
    for the run's events; then they notify."""
    run = Run(agent_name="echo")
    await writer.create_run(RunRecord(run=run), _event(0))

    async def unwatched() -> None:
        await writer.append_events(run.run_id, [_event(1)])
        await writer.transition(
            run.run_id, {"status": RunStatus.IN_PROGRESS}, expect={RunStatus.CREATED}, events=[_event(2)]
        )
        await writer.batcher.settle(run.run_id)

    assert await _notifications(postgres, unwatched) == []
    waiting = asyncio.create_task(reader.read_events(run.run_id, 3, timeout=5))

    async def watched() -> None:
        await asyncio.sleep(0.3)  # the reader marked the run and waits
        await writer.append_events(run.run_id, [_event(3)])
        await writer.batcher.settle(run.run_id)

    assert await _notifications(postgres, watched) == [f"{run.run_id} 0 4"]
    assert await waiting == [_event(3)]


async def test_merged_writes_racing_from_two_processes_number_every_event_once(
    alias: str, make_store: StoreFactory
) -> None:
    """Two workers write the same run at once, each with queued events and a change: the row lock taken
    first makes each statement number from the count it changes, and every compare-and-set that loses
    is tried again from the row."""
    first, second = make_store(), make_store()
    run = Run(agent_name="echo")
    await first.create_run(RunRecord(run=run), _event(0))
    await second.get_run(run.run_id)

    async def writes(store: DjangoStore, base: int) -> None:
        for n in range(10):
            output = [Message(role="agent", parts=[MessagePart(content=f"{base + n}")])]
            await store._change_run_with(
                run.run_id, [_event(base + n)], {"output": output}, None, [_event(base + n + 1000)]
            )

    await asyncio.gather(writes(first, 100), writes(second, 200))
    stored = await _stored(first, run.run_id)
    assert len(stored) == 41
    assert sorted(stored, key=lambda event: event.data) == sorted(
        [_event(0)]
        + [_event(base + n + extra) for base in (100, 200) for n in range(10) for extra in (0, 1000)],
        key=lambda event: event.data,
    )
    assert await first.count_events(run.run_id) == 41
    for base in (100, 200):  # each worker's events in its order, queued ones before its change's
        mine = [
            event for event in stored if event in {_event(base + n + e) for n in range(10) for e in (0, 1000)}
        ]
        assert mine == [_event(base + n + extra) for n in range(10) for extra in (0, 1000)]
