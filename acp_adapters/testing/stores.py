"""The store conformance suite: what every store must do, shipped so that any store can run it.

>>> from acp_adapters.testing.stores import StoreConformance          # doctest: +SKIP
>>> class TestMyStore(StoreConformance):                              # doctest: +SKIP
...     store_class = MyStore

A store of one process sets ``store_class`` (called with the tunables it is tested with as keywords:
``retention``, ``max_finished_runs``, ``lease_ttl``, ``max_retained_bytes``; :class:`Store`'s own
``__init__`` takes them all). A shared store overrides :meth:`StoreConformance.open_scope` with a
:class:`StoreScope` whose :meth:`~StoreScope.new_store` gives a new instance over the same data, as
another worker process would have it, and whose :meth:`~StoreScope.aclose` deletes the test's data.
See ``docs/stores.md``.

The suite needs pytest and anyio's pytest plugin (the tests are async, on asyncio): they are
dependencies of whoever runs it, imported here only, never by ``import acp_adapters``.

This module is long on purpose: it is the one definition of a store, every promise with its test, and
the package's own stores (memory, Redis, Django database) run exactly it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest

from acp_adapters.core.models import (
    Error,
    ErrorCode,
    Message,
    MessageAwaitRequest,
    MessagePart,
    Run,
    RunStatus,
    utc_now,
)
from acp_adapters.core.store import EventRecord, ResourceRecord, RunRecord, SessionRecord, Signal, Store

__all__ = ["STORE_OPTIONS", "OneStoreScope", "StoreConformance", "StoreScope"]

#: What a test may ask of a store: ``retention`` (s), ``max_finished_runs``, ``lease_ttl`` (s),
#: ``max_retained_bytes``.
STORE_OPTIONS = ("retention", "max_finished_runs", "lease_ttl", "max_retained_bytes")


class StoreScope(ABC):
    """The stores of one test, all over the same (initially empty) data.

    ``await scope.open(**options)`` gives a started instance, as one more worker process would have it
    (for a store of one process, the same instance each time); ``await scope.aclose()`` closes them all
    and deletes the test's data. The options are :data:`STORE_OPTIONS`.
    """

    def __init__(self) -> None:
        self.stores: list[Store] = []

    @abstractmethod
    async def new_store(self, **options: Any) -> Store:
        """A new store instance over this scope's data (not started)."""

    async def open(self, **options: Any) -> Store:
        """A started store over this scope's data, as one more worker process would have it."""
        unknown = set(options) - set(STORE_OPTIONS)
        assert not unknown, f"unknown store options {unknown}"
        store = await self.new_store(**options)
        if store not in self.stores:
            await store.start()
            self.stores.append(store)
        return store

    async def aclose(self) -> None:
        """Close every store of the scope and drop its data."""
        for store in self.stores:
            await store.close()
        self.stores.clear()


class OneStoreScope(StoreScope):
    """The scope of a store of one process: one instance, made on first use with the options given."""

    def __init__(self, factory: Any) -> None:
        super().__init__()
        self.factory = factory
        self.store: Store | None = None

    async def new_store(self, **options: Any) -> Store:
        if self.store is None:
            self.store = self.factory(**options)
            assert isinstance(self.store, Store), f"{self.factory!r} made {self.store!r}, not a Store"
        return self.store


ACTIVE = {RunStatus.CREATED, RunStatus.IN_PROGRESS, RunStatus.AWAITING}
KiB = 1024


def event(n: int | str, type: str = "generic") -> EventRecord:
    """An event as the engine writes them: JSON that starts with its type."""
    return EventRecord(type, b'{"type":"%s","n":"%s"}' % (type.encode(), str(n).encode()))


def run_event(type: str, run: Run) -> EventRecord:
    """A ``run.*`` event: it carries the run (a store may read a finished run back from its last event)."""
    return EventRecord(type, b'{"type":"%s","run":%s}' % (type.encode(), run.model_dump_json().encode()))


async def new_run(store: Store, *, owner: str | None = None, session_id: uuid.UUID | None = None) -> Run:
    run = Run(agent_name="echo", session_id=session_id)
    await store.create_run(RunRecord(run=run, owner=owner), run_event("run.created", run))
    return run


async def settled(store: Store, run_id: uuid.UUID, count: int, within: float = 5.0) -> list[EventRecord]:
    """The run's first ``count`` events, once they are all visible.

    Appended events become visible soon, not necessarily when ``append_events`` returns: a store may
    send them in batches (what it must keep is their order, and that a status change it records
    later is never seen before them).
    """
    seen: list[EventRecord] = []
    deadline = time.monotonic() + within
    while len(seen) < count and time.monotonic() < deadline:
        seen += await store.read_events(run_id, len(seen), timeout=max(0.0, deadline - time.monotonic()))
    assert len(seen) == count, f"{len(seen)} of {count} events visible after {within} s"
    return seen


async def finish(store: Store, run_id: uuid.UUID, status: RunStatus = RunStatus.COMPLETED) -> None:
    assert await store.update_run(run_id, {"status": status, "finished_at": utc_now()}) is not None


async def end(store: Store, run: Run) -> None:
    """End the run as the engine does: its status and the event announcing it, as one step."""
    done = run.model_copy(update={"status": RunStatus.COMPLETED, "finished_at": utc_now()})
    changes = {"status": RunStatus.COMPLETED, "finished_at": done.finished_at}
    events = [run_event("run.completed", done)]
    assert await store.transition(run.run_id, changes, expect=ACTIVE, events=events) is not None


def bulky(n: int, size: int) -> EventRecord:
    """An event of about ``size`` bytes that compresses poorly."""
    return event(f"{n}:{uuid.uuid4().hex * (size // 32)}", "message.part")


class StoreConformance:
    """What every store must do; subclass it as ``Test...`` in a test module (see the module docstring).

    Its fixtures: ``stores`` (the test's :class:`StoreScope`), ``store`` (its first instance, default
    options) and ``anyio_backend`` (asyncio).
    """

    pytestmark: ClassVar[list[Any]] = [pytest.mark.anyio]

    #: The store of one process to test: called with the tunables a test asks for, as keywords.
    store_class: ClassVar[type[Store] | None] = None

    def open_scope(self) -> StoreScope:
        """A fresh, empty scope for one test; override it for a shared store."""
        if self.store_class is None:
            raise TypeError(f"{type(self).__name__}: set store_class, or override open_scope()")
        return OneStoreScope(self.store_class)

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    async def stores(self) -> AsyncIterator[StoreScope]:
        """Store instances over the same, empty data; each ``await stores.open()`` is one more worker."""
        scope = self.open_scope()
        try:
            yield scope
        finally:
            await scope.aclose()

    @pytest.fixture
    async def store(self, stores: StoreScope) -> Store:
        """A started store with default options."""
        return await stores.open()

    async def test_ping_of_a_reachable_store_returns(self, stores: StoreScope) -> None:
        # GET {mount}/health answers 200 only when it does (a store of one process has nothing to check).
        store = await stores.open()
        await store.ping()
        await new_run(store)
        await store.ping()

    # runs -------------------------------------------------------------------------------------------------
    async def test_create_and_get_keep_every_field(self, stores: StoreScope) -> None:
        store, other = await stores.open(), await stores.open()
        run = Run(
            agent_name="echo",
            session_id=uuid.uuid4(),
            status=RunStatus.AWAITING,
            await_request=MessageAwaitRequest(
                message=Message(role="agent", parts=[MessagePart(content="why?")])
            ),
            output=[Message(role="agent/echo", parts=[MessagePart(content="hé", content_type="text/plain")])],
            error=Error(code=ErrorCode.SERVER_ERROR, message="boom", data={"k": [1, 2]}),
        )
        await store.create_run(RunRecord(run=run, owner="alice"), run_event("run.created", run))
        record = await other.get_run(run.run_id)
        assert record is not None
        assert record.owner == "alice"
        assert record.run.model_dump(mode="json") == run.model_dump(mode="json")
        assert await other.read_events(run.run_id, 0) == [run_event("run.created", run)]
        assert await other.get_run(uuid.uuid4()) is None

    async def test_run_without_owner(self, store: Store) -> None:
        run = await new_run(store)
        record = await store.get_run(run.run_id)
        assert record is not None and record.owner is None

    async def test_update_sets_fields_and_returns_the_record(self, stores: StoreScope) -> None:
        store, other = await stores.open(), await stores.open()
        run = await new_run(store, owner="bob")
        output = [Message(role="agent/echo", parts=[MessagePart(content="one"), MessagePart(content="two")])]
        record = await other.update_run(run.run_id, {"status": RunStatus.IN_PROGRESS, "output": output})
        assert record is not None
        assert record.run.status is RunStatus.IN_PROGRESS
        assert record.owner == "bob"
        seen = await store.get_run(run.run_id)
        assert seen is not None
        assert seen.run.status is RunStatus.IN_PROGRESS
        assert [m.model_dump(mode="json") for m in seen.run.output] == [
            m.model_dump(mode="json") for m in output
        ]
        assert seen.run.created_at == run.created_at

    async def test_update_can_clear_a_field(self, store: Store) -> None:
        run = await new_run(store)
        request = MessageAwaitRequest(message=Message(role="agent", parts=[MessagePart(content="?")]))
        await store.update_run(run.run_id, {"status": RunStatus.AWAITING, "await_request": request})
        record = await store.update_run(run.run_id, {"status": RunStatus.IN_PROGRESS, "await_request": None})
        assert record is not None and record.run.await_request is None
        again = await store.get_run(run.run_id)
        assert again is not None and again.run.await_request is None

    async def test_update_of_a_missing_run_is_none(self, store: Store) -> None:
        assert await store.update_run(uuid.uuid4(), {"status": RunStatus.FAILED}) is None
        assert await store.update_run(uuid.uuid4(), {}, expect={RunStatus.CREATED}) is None

    async def test_update_with_expect(self, store: Store) -> None:
        run = await new_run(store)
        assert (
            await store.update_run(run.run_id, {"status": RunStatus.FAILED}, expect={RunStatus.AWAITING})
            is None
        )
        record = await store.get_run(run.run_id)
        assert record is not None and record.run.status is RunStatus.CREATED
        assert await store.update_run(run.run_id, {"status": RunStatus.FAILED}, expect=set()) is None
        # An empty change is a peek: the status is checked, nothing is written.
        peek = await store.update_run(run.run_id, {}, expect={RunStatus.CREATED})
        assert peek is not None and peek.run.status is RunStatus.CREATED
        changed = await store.update_run(run.run_id, {"status": RunStatus.IN_PROGRESS}, expect=ACTIVE)
        assert changed is not None and changed.run.status is RunStatus.IN_PROGRESS

    async def test_fifty_concurrent_compare_and_sets_exactly_one_wins(self, stores: StoreScope) -> None:
        instances = [await stores.open() for _ in range(2)]
        run = await new_run(instances[0])
        await instances[0].update_run(run.run_id, {"status": RunStatus.AWAITING})

        async def resume(i: int) -> bool:
            store = instances[i % len(instances)]
            changes = {
                "status": RunStatus.IN_PROGRESS,
                "output": [Message(role="user", parts=[MessagePart(content=str(i))])],
            }
            return await store.update_run(run.run_id, changes, expect={RunStatus.AWAITING}) is not None

        wins = await asyncio.gather(*(resume(i) for i in range(50)))
        assert sum(wins) == 1
        record = await instances[1].get_run(run.run_id)
        assert record is not None and record.run.status is RunStatus.IN_PROGRESS
        # The winner's output is the one stored, whole.
        assert record.run.output[0].parts[0].content == str(wins.index(True))

    async def test_cancel_races_resume(self, stores: StoreScope) -> None:
        store, other = await stores.open(), await stores.open()
        for _ in range(10):
            run = await new_run(store)
            await store.update_run(run.run_id, {"status": RunStatus.AWAITING})
            results = await asyncio.gather(
                store.update_run(run.run_id, {"status": RunStatus.IN_PROGRESS}, expect={RunStatus.AWAITING}),
                other.update_run(run.run_id, {"status": RunStatus.CANCELLING}, expect=ACTIVE),
            )
            record = await store.get_run(run.run_id)
            assert record is not None
            # Both may win only in the order resume then cancel (cancel is allowed while in progress).
            if results[0] is not None and results[1] is not None:
                assert record.run.status is RunStatus.CANCELLING
            else:
                assert sum(r is not None for r in results) == 1

    async def test_transition_applies_changes_and_appends_events_together(self, stores: StoreScope) -> None:
        store, other = await stores.open(), await stores.open()
        run = await new_run(store)
        announced = [run_event("run.in-progress", run.model_copy(update={"status": RunStatus.IN_PROGRESS}))]
        record = await other.transition(
            run.run_id, {"status": RunStatus.IN_PROGRESS}, expect={RunStatus.CREATED}, events=announced
        )
        assert record is not None and record.run.status is RunStatus.IN_PROGRESS
        assert await store.read_events(run.run_id, 1) == announced
        # A transition that does not apply appends nothing.
        refused = await store.transition(
            run.run_id,
            {"status": RunStatus.FAILED},
            expect={RunStatus.AWAITING},
            events=[run_event("run.failed", run.model_copy(update={"status": RunStatus.FAILED}))],
        )
        assert refused is None
        assert await store.count_events(run.run_id) == 2
        record = await store.get_run(run.run_id)
        assert record is not None and record.run.status is RunStatus.IN_PROGRESS

    async def test_create_and_transition_stores_the_run_moved_with_both_events(
        self, stores: StoreScope
    ) -> None:
        store, other = await stores.open(), await stores.open()
        run = Run(agent_name="echo")
        moved = run.model_copy(update={"status": RunStatus.IN_PROGRESS})
        first, started = run_event("run.created", run), run_event("run.in-progress", moved)
        changes = {"status": RunStatus.IN_PROGRESS}
        assert await store.create_and_transition(RunRecord(run, "alice"), first, changes, events=[started])
        record = await other.get_run(run.run_id)
        assert record is not None and record.owner == "alice"
        assert record.run.status is RunStatus.IN_PROGRESS
        assert await other.read_events(run.run_id, 0) == [first, started]
        # It goes on as any run: a cancel may move it, and its next event follows the two.
        assert await other.update_run(run.run_id, {"status": RunStatus.CANCELLING}, expect=ACTIVE)
        await store.append_events(run.run_id, [event(2)])
        assert await settled(other, run.run_id, 3) == [first, started, event(2)]

    async def test_create_and_transition_may_create_a_run_already_ended(self, stores: StoreScope) -> None:
        """A short run written once, at its end (see :mod:`acp_adapters.core.run_writes`): stored ended
        with every event, it holds no lease, refuses moves, and is kept as any finished run."""
        store = await stores.open(max_finished_runs=2, lease_ttl=0.3)
        other = await stores.open(max_finished_runs=2, lease_ttl=0.3)
        runs = []
        for i in range(3):
            run = Run(agent_name="echo")
            output = [Message(role="agent/echo", parts=[MessagePart(content=f"m{i}")])]
            changes = {"status": RunStatus.COMPLETED, "output": output, "finished_at": utc_now()}
            moved, ended = (
                run.model_copy(update={"status": RunStatus.IN_PROGRESS}),
                run.model_copy(update=changes),
            )
            events = [run_event("run.in-progress", moved), event(2), run_event("run.completed", ended)]
            first = run_event("run.created", run)
            assert await store.create_and_transition(RunRecord(run, "alice"), first, changes, events=events)
            record = await other.get_run(run.run_id)
            assert record is not None and record.owner == "alice"
            assert record.run.status is RunStatus.COMPLETED
            assert [m.model_dump(mode="json") for m in record.run.output] == [
                m.model_dump(mode="json") for m in output
            ]
            assert await other.read_events(run.run_id, 0) == [first, *events]
            assert await other.update_run(run.run_id, {"status": RunStatus.CANCELLING}, expect=ACTIVE) is None
            runs.append(run)
            await asyncio.sleep(0.01)  # distinct finishing times
        await asyncio.sleep(0.5)  # past the lease a run still going would have held
        assert await other.find_lost_runs() == []
        assert [run for run in runs if await other.get_run(run.run_id) is not None] == runs[1:]

    async def test_append_and_update_writes_the_changes_with_or_after_the_events(
        self, stores: StoreScope
    ) -> None:
        store, other = await stores.open(), await stores.open()
        run = await new_run(store)
        output = [Message(role="agent/echo", parts=[MessagePart(content="one")])]
        await store.append_and_update(run.run_id, [event(1), event(2)], {"output": output})
        assert (await settled(other, run.run_id, 3))[1:] == [event(1), event(2)]
        # Written by the run's next write at the latest, whatever that write's status check decides.
        assert await store.update_run(run.run_id, {}, expect={RunStatus.AWAITING}) is None
        record = await other.get_run(run.run_id)
        assert record is not None and record.run.status is RunStatus.CREATED
        assert [m.model_dump(mode="json") for m in record.run.output] == [
            m.model_dump(mode="json") for m in output
        ]
        # The latest value of a field wins, and goes with a write of the run that applies.
        more = [*output, Message(role="agent/echo", parts=[MessagePart(content="two")])]
        await store.append_and_update(run.run_id, [event(3)], {"output": output})
        await store.append_and_update(run.run_id, [event(4)], {"output": more})
        ended = await store.transition(
            run.run_id, {"status": RunStatus.COMPLETED}, expect=ACTIVE, events=[event(5)]
        )
        assert ended is not None and len(ended.run.output) == 2
        assert await other.read_events(run.run_id, 3) == [event(3), event(4), event(5)]
        record = await other.get_run(run.run_id)
        assert record is not None and [m.parts[0].content for m in record.run.output] == ["one", "two"]

    async def test_racing_transitions_announce_only_the_winner(self, stores: StoreScope) -> None:
        instances = [await stores.open() for _ in range(2)]
        run = await new_run(instances[0])
        await instances[0].update_run(run.run_id, {"status": RunStatus.AWAITING})

        async def claim(i: int) -> bool:
            store = instances[i % 2]
            status = RunStatus.IN_PROGRESS if i % 3 else RunStatus.CANCELLING
            record = await store.transition(
                run.run_id, {"status": status}, expect={RunStatus.AWAITING}, events=[event(i, "claim")]
            )
            return record is not None

        wins = await asyncio.gather(*(claim(i) for i in range(30)))
        assert sum(wins) == 1
        assert await instances[1].read_events(run.run_id, 1) == [event(wins.index(True), "claim")]

    async def test_a_reader_never_sees_a_status_before_its_event(self, stores: StoreScope) -> None:
        store, other = await stores.open(), await stores.open()
        runs = [await new_run(store) for _ in range(20)]
        seen_early = 0

        async def watch(run: Run) -> None:
            nonlocal seen_early
            for _ in range(200):
                record = await other.get_run(run.run_id)
                assert record is not None
                if record.run.status is RunStatus.COMPLETED:
                    if await other.count_events(run.run_id) < 7:
                        seen_early += 1
                    return
                await asyncio.sleep(0)

        async def complete(run: Run) -> None:
            await asyncio.sleep(0.001)
            for i in range(5):  # appended just before: they too come before the new status
                await store.append_events(run.run_id, [event(i, "message.part")])
            await store.transition(
                run.run_id,
                {"status": RunStatus.COMPLETED, "finished_at": utc_now()},
                expect=ACTIVE,
                events=[run_event("run.completed", run.model_copy(update={"status": RunStatus.COMPLETED}))],
            )

        await asyncio.gather(*(watch(run) for run in runs), *(complete(run) for run in runs))
        assert seen_early == 0

    # events -----------------------------------------------------------------------------------------------
    async def test_events_in_order_from_any_index(self, stores: StoreScope) -> None:
        store, other = await stores.open(), await stores.open()
        run = await new_run(store)
        expected = [run_event("run.created", run)]
        for batch in range(10):
            events = [event(f"{batch}.{i}") for i in range(batch + 1)]
            await store.append_events(run.run_id, events)
            expected += events
        assert await settled(other, run.run_id, len(expected)) == expected
        assert await other.count_events(run.run_id) == len(expected)
        for start in (0, 1, 7, len(expected) - 1):
            assert await other.read_events(run.run_id, start) == expected[start:]
        assert await other.read_events(run.run_id, len(expected)) == []
        assert await other.read_events(run.run_id, len(expected) + 5) == []

    async def test_many_events_from_many_appends(self, store: Store) -> None:
        run = await new_run(store)
        for i in range(2000):
            await store.append_events(run.run_id, [event(i, "message.part")])
        assert await store.count_events(run.run_id) == 2001
        events = await settled(store, run.run_id, 2001)
        assert events[1:] == [event(i, "message.part") for i in range(2000)]
        assert await store.read_events(run.run_id, 1) == events[1:]

    async def test_events_keep_their_bytes(self, store: Store) -> None:
        run = await new_run(store)
        data = '{"type":"message.part","part":{"content":"é\\n\\u0000 \\"q\\""}}'.encode()
        await store.append_events(run.run_id, [EventRecord("message.part", data), EventRecord("x", b"")])
        assert (await settled(store, run.run_id, 3))[1:] == [
            EventRecord("message.part", data),
            EventRecord("x", b""),
        ]

    async def test_events_of_an_unknown_run(self, store: Store) -> None:
        assert await store.read_events(uuid.uuid4(), 0) == []
        started = time.monotonic()
        assert await store.read_events(uuid.uuid4(), 0, timeout=0.5) == []
        assert time.monotonic() - started < 1.5

    async def test_blocked_reader_is_woken_by_an_append_from_another_instance(
        self, stores: StoreScope
    ) -> None:
        store, other = await stores.open(), await stores.open()
        run = await new_run(store)
        reader = asyncio.create_task(other.read_events(run.run_id, 1, timeout=10))
        await asyncio.sleep(0.2)
        assert not reader.done()
        appended = time.monotonic()
        await store.append_events(run.run_id, [event(1), event(2)])
        events = await asyncio.wait_for(reader, 5)
        assert time.monotonic() - appended < 1.0
        # The reader gets what was appended (a store may hand over the first of a batch, or all of it).
        assert events and events == [event(1), event(2)][: len(events)]

    async def test_many_readers_are_all_woken(self, stores: StoreScope) -> None:
        store, other = await stores.open(), await stores.open()
        run = await new_run(store)
        readers = [
            asyncio.create_task((store, other)[i % 2].read_events(run.run_id, 1, timeout=10))
            for i in range(20)
        ]
        await asyncio.sleep(0.2)
        await store.append_events(run.run_id, [event(1)])
        results = await asyncio.wait_for(asyncio.gather(*readers), 5)
        assert all(result == [event(1)] for result in results)

    async def test_blocked_reader_times_out_empty(self, store: Store) -> None:
        run = await new_run(store)
        started = time.monotonic()
        assert await store.read_events(run.run_id, 1, timeout=0.5) == []
        assert 0.4 <= time.monotonic() - started < 2.0

    async def test_a_reader_following_a_run_sees_every_event_in_order(self, stores: StoreScope) -> None:
        store, other = await stores.open(), await stores.open()
        run = await new_run(store)

        async def follow() -> list[EventRecord]:
            seen: list[EventRecord] = []
            while not seen or seen[-1].type != "run.completed":
                seen += await other.read_events(run.run_id, len(seen), timeout=5)
            return seen

        follower = asyncio.create_task(follow())
        sent = [run_event("run.created", run)]
        for i in range(300):
            batch = (
                [event(i, "message.part")] if i % 3 else [event(i, "message.part"), event(f"{i}b", "generic")]
            )
            await store.append_events(run.run_id, batch)
            sent += batch
            if i % 50 == 0:
                await asyncio.sleep(0.01)
        completed = run_event("run.completed", run.model_copy(update={"status": RunStatus.COMPLETED}))
        await store.append_events(run.run_id, [completed])
        sent.append(completed)
        assert await asyncio.wait_for(follower, 20) == sent

    # signals ----------------------------------------------------------------------------------------------
    async def test_signal_sent_before_the_receiver_listens(self, stores: StoreScope) -> None:
        store, other = await stores.open(), await stores.open()
        run = await new_run(store)
        await other.send_signal(run.run_id, Signal("resume", b'{"await_resume":{"message":null}}'))
        signal = await asyncio.wait_for(store.receive_signal(run.run_id), 5)
        assert signal == Signal("resume", b'{"await_resume":{"message":null}}')

    async def test_signal_sent_while_the_receiver_waits(self, stores: StoreScope) -> None:
        store, other = await stores.open(), await stores.open()
        run = await new_run(store)
        receiver = asyncio.create_task(store.receive_signal(run.run_id))
        await asyncio.sleep(0.3)
        assert not receiver.done()
        sent = time.monotonic()
        await other.send_signal(run.run_id, Signal("cancel"))
        assert await asyncio.wait_for(receiver, 5) == Signal("cancel")
        assert time.monotonic() - sent < 1.0

    async def test_signals_arrive_once_and_in_order(self, stores: StoreScope) -> None:
        store, other = await stores.open(), await stores.open()
        run = await new_run(store)
        await other.send_signal(run.run_id, Signal("resume", b"1"))
        await other.send_signal(run.run_id, Signal("cancel"))
        assert await asyncio.wait_for(store.receive_signal(run.run_id), 5) == Signal("resume", b"1")
        assert await asyncio.wait_for(store.receive_signal(run.run_id), 5) == Signal("cancel")
        late = asyncio.create_task(store.receive_signal(run.run_id))
        await asyncio.sleep(0.3)
        assert not late.done()
        late.cancel()

    async def test_signals_reach_their_own_run_only(self, stores: StoreScope) -> None:
        store, other = await stores.open(), await stores.open()
        runs = [await new_run(store) for _ in range(10)]
        receivers = [asyncio.create_task(store.receive_signal(run.run_id)) for run in runs]
        await asyncio.sleep(0.2)
        for i, run in enumerate(runs):
            await other.send_signal(run.run_id, Signal("resume", str(i).encode()))
        results = await asyncio.wait_for(asyncio.gather(*receivers), 5)
        assert [signal.payload for signal in results] == [str(i).encode() for i in range(10)]

    async def test_signal_to_an_unknown_run_is_dropped(self, store: Store) -> None:
        await store.send_signal(uuid.uuid4(), Signal("cancel"))

    # sessions ---------------------------------------------------------------------------------------------
    async def test_sessions(self, stores: StoreScope) -> None:
        store, other = await stores.open(), await stores.open()
        assert await store.get_session(uuid.uuid4()) is None
        session_id = uuid.uuid4()
        record = SessionRecord(
            id=session_id, history=["http://h/r/1", "http://h/r/2"], state="http://h/s", owner="o"
        )
        await store.put_session(record)
        assert await other.get_session(session_id) == record
        # put replaces the whole session.
        await other.put_session(SessionRecord(id=session_id, history=["http://h/r/3"]))
        assert await store.get_session(session_id) == SessionRecord(id=session_id, history=["http://h/r/3"])

    async def test_extend_session_creates_appends_and_keeps_the_owner(self, stores: StoreScope) -> None:
        store, other = await stores.open(), await stores.open()
        session_id = uuid.uuid4()
        first = await store.extend_session(session_id, ["u1", "u2"], owner="alice")
        assert first == SessionRecord(id=session_id, history=["u1", "u2"], owner="alice")
        second = await other.extend_session(session_id, ["u3"], state="s1", owner="alice")
        assert second == SessionRecord(id=session_id, history=["u1", "u2", "u3"], state="s1", owner="alice")
        third = await store.extend_session(session_id, [], owner="alice")
        assert third == second
        assert await other.get_session(session_id) == second

    async def test_extend_session_by_another_owner_writes_nothing(self, stores: StoreScope) -> None:
        store, other = await stores.open(), await stores.open()
        owned, anonymous = uuid.uuid4(), uuid.uuid4()
        alices = await store.extend_session(owned, ["u1"], state="s1", owner="alice")
        assert alices is not None
        assert await other.extend_session(owned, ["evil"], state="evil", owner="mallory") is None
        assert await other.extend_session(owned, ["evil"], state="evil") is None  # anonymous is another owner
        assert await store.get_session(owned) == SessionRecord(
            id=owned, history=["u1"], state="s1", owner="alice"
        )
        # A session made anonymously is no identity's to write into either.
        nobodys = await store.extend_session(anonymous, ["u1"])
        assert nobodys == SessionRecord(id=anonymous, history=["u1"])
        assert await other.extend_session(anonymous, ["u2"], owner="alice") is None
        assert await store.get_session(anonymous) == SessionRecord(id=anonymous, history=["u1"])

    async def test_claim_session_stores_a_new_session(self, stores: StoreScope) -> None:
        store, other = await stores.open(), await stores.open()
        record = SessionRecord(id=uuid.uuid4(), history=["http://h/r/1"], state="http://h/s", owner="alice")
        assert await store.claim_session(record) == record
        assert await other.get_session(record.id) == record
        anonymous = SessionRecord(id=uuid.uuid4())
        assert await other.claim_session(anonymous) == anonymous
        assert await store.get_session(anonymous.id) == anonymous

    async def test_claim_session_of_a_known_session_returns_it_unchanged(self, stores: StoreScope) -> None:
        store, other = await stores.open(), await stores.open()
        session_id = uuid.uuid4()
        first = SessionRecord(id=session_id, history=["http://h/r/1"], state="http://h/s", owner="alice")
        await store.claim_session(first)
        for owner in ("mallory", None, "alice"):
            claim = SessionRecord(id=session_id, history=["http://evil/"], state="http://evil/s", owner=owner)
            assert await other.claim_session(claim) == first
        assert await store.get_session(session_id) == first

    async def test_concurrent_session_claims_have_one_winner(self, stores: StoreScope) -> None:
        instances = [await stores.open() for _ in range(2)]
        session_id = uuid.uuid4()

        async def claim(i: int) -> SessionRecord:
            record = SessionRecord(id=session_id, history=[f"u{i}"], owner=f"owner-{i}")
            return await instances[i % 2].claim_session(record)

        results = await asyncio.gather(*(claim(i) for i in range(20)))
        winners = [i for i, result in enumerate(results) if result.owner == f"owner-{i}"]
        assert len(winners) == 1
        winner = SessionRecord(id=session_id, history=[f"u{winners[0]}"], owner=f"owner-{winners[0]}")
        assert all(result == winner for result in results)
        assert await instances[1].get_session(session_id) == winner

    async def test_concurrent_history_appends_lose_nothing(self, stores: StoreScope) -> None:
        instances = [await stores.open() for _ in range(2)]
        session_id = uuid.uuid4()

        async def run_in_session(worker: int, n: int) -> None:
            store = instances[worker]
            await store.extend_session(session_id, [f"w{worker}-{n}-in", f"w{worker}-{n}-out"])

        await asyncio.gather(*(run_in_session(w, n) for n in range(50) for w in range(2)))
        record = await instances[0].get_session(session_id)
        assert record is not None
        assert len(record.history) == 200
        assert set(record.history) == {
            f"w{w}-{n}-{kind}" for w in range(2) for n in range(50) for kind in ("in", "out")
        }
        # Each run's messages stay together and in order.
        for url in record.history[::2]:
            assert url.endswith("-in")

    # resources --------------------------------------------------------------------------------------------
    async def test_resources(self, stores: StoreScope) -> None:
        store, other = await stores.open(), await stores.open()
        resource_id = uuid.uuid4()
        data = bytes(range(256)) * 10
        await store.put_resource(resource_id, data, owner="alice")
        assert await other.get_resource(resource_id) == ResourceRecord(data, "alice")
        assert await other.get_resource(uuid.uuid4()) is None
        await other.put_resource(resource_id, b"")
        assert await store.get_resource(resource_id) == ResourceRecord(b"", None)
        anonymous = uuid.uuid4()
        await store.put_resource(anonymous, b"{}")
        record = await other.get_resource(anonymous)
        assert record == ResourceRecord(b"{}", None)
        assert record is not None and record.owner is None

    # idempotency keys -------------------------------------------------------------------------------------
    async def test_claim_key_holds_the_first_value(self, stores: StoreScope) -> None:
        store, other = await stores.open(), await stores.open()
        key = f"alice:{uuid.uuid4().hex}"
        assert await store.claim_key(key, b"first", 60) is None
        assert await other.claim_key(key, b"second", 60) == b"first"
        assert await store.claim_key(key, b"third", 60) == b"first"
        # Keys are independent of each other.
        assert await other.claim_key(f"bob:{uuid.uuid4().hex}", b"\x00\xff", 60) is None

    async def test_claim_key_expires_after_its_ttl(self, stores: StoreScope) -> None:
        store, other = await stores.open(), await stores.open()
        key = f"k:{uuid.uuid4().hex}"
        assert await store.claim_key(key, b"first", 0.5) is None
        assert await other.claim_key(key, b"second", 0.5) == b"first"
        await asyncio.sleep(0.8)
        assert await other.claim_key(key, b"again", 60) is None
        assert await store.claim_key(key, b"later", 60) == b"again"

    async def test_concurrent_key_claims_have_one_winner(self, stores: StoreScope) -> None:
        instances = [await stores.open() for _ in range(2)]
        key = f"k:{uuid.uuid4().hex}"
        results = await asyncio.gather(
            *(instances[i % 2].claim_key(key, f"v{i}".encode(), 60) for i in range(20))
        )
        assert results.count(None) == 1
        winner = f"v{results.index(None)}".encode()
        assert all(result in (None, winner) for result in results)

    # liveness ---------------------------------------------------------------------------------------------
    async def test_a_run_whose_lease_lapses_is_lost(self, stores: StoreScope) -> None:
        worker = await stores.open(lease_ttl=0.6)
        watcher = await stores.open(lease_ttl=0.6)
        if not worker.shared:
            # One process: runs end with it, there is nothing to lose.
            await worker.renew_leases([uuid.uuid4()], 0.6)
            assert await watcher.find_lost_runs() == []
            return
        kept, dropped, done = [await new_run(worker) for _ in range(3)]
        await worker.renew_leases([kept.run_id, dropped.run_id, done.run_id], 0.6)
        await finish(worker, done.run_id)
        assert await watcher.find_lost_runs() == []
        for _ in range(8):  # 1.6 s: dropped's lease lapses, kept's is renewed
            await asyncio.sleep(0.2)
            await worker.renew_leases([kept.run_id, done.run_id], 0.6)
        assert await watcher.find_lost_runs() == [dropped.run_id]
        # The watcher fails it; exactly one of two watchers would win.
        claims = await asyncio.gather(
            watcher.update_run(dropped.run_id, {"status": RunStatus.FAILED}, expect=ACTIVE),
            worker.update_run(dropped.run_id, {"status": RunStatus.FAILED}, expect=ACTIVE),
        )
        assert sum(c is not None for c in claims) == 1
        assert await watcher.find_lost_runs() == []

    async def test_an_awaiting_run_with_a_live_lease_is_not_lost(self, stores: StoreScope) -> None:
        worker = await stores.open(lease_ttl=0.5)
        watcher = await stores.open(lease_ttl=0.5)
        run = await new_run(worker)
        await worker.update_run(run.run_id, {"status": RunStatus.AWAITING})
        for _ in range(6):
            await worker.renew_leases([run.run_id], 0.5)
            await asyncio.sleep(0.15)
            assert run.run_id not in await watcher.find_lost_runs()

    # retention --------------------------------------------------------------------------------------------
    async def test_finished_runs_sessions_and_resources_expire(self, stores: StoreScope) -> None:
        store = await stores.open(retention=1.0, lease_ttl=0.3)
        finished, going = await new_run(store), await new_run(store)
        await store.append_events(finished.run_id, [event(1)])
        await finish(store, finished.run_id, RunStatus.FAILED)
        session_id, resource_id = uuid.uuid4(), uuid.uuid4()
        await store.extend_session(session_id, ["u"])
        await store.put_resource(resource_id, b"r")
        for _ in range(8):  # 2 s, the running run's lease renewed all along
            await asyncio.sleep(0.25)
            await store.renew_leases([going.run_id], 0.3)
        # Some stores evict when a run ends: end one.
        await finish(store, (await new_run(store)).run_id)
        assert await store.get_run(finished.run_id) is None
        assert await store.read_events(finished.run_id, 0) == []
        assert await store.get_session(session_id) is None
        assert await store.get_resource(resource_id) is None
        # A run that is still going never expires.
        record = await store.get_run(going.run_id)
        assert record is not None and record.run.status is RunStatus.CREATED
        assert await store.read_events(going.run_id, 0) == [run_event("run.created", going)]

    async def test_at_most_max_finished_runs_are_kept(self, stores: StoreScope) -> None:
        store = await stores.open(max_finished_runs=3)
        going = await new_run(store)
        runs = [await new_run(store) for _ in range(5)]
        for run in runs:
            await finish(store, run.run_id)
            await asyncio.sleep(0.01)  # distinct finishing times
        kept = [run for run in runs if await store.get_run(run.run_id) is not None]
        assert kept == runs[2:]
        assert await store.get_run(going.run_id) is not None

    # bytes ------------------------------------------------------------------------------------------------
    async def test_what_is_kept_is_bounded_by_bytes(self, stores: StoreScope) -> None:
        budget = 256 * KiB
        store = await stores.open(max_retained_bytes=budget)
        going = await new_run(store)
        going_events = [bulky(i, 16 * KiB) for i in range(8)]  # 128 KiB, never evicted
        await store.append_events(going.run_id, going_events)
        # Finished runs: 48 of 16 KiB, three times the budget; the oldest go.
        runs = []
        for i in range(48):
            run = await new_run(store)
            await store.append_events(run.run_id, [bulky(i, 16 * KiB)])
            await end(store, run)
            runs.append(run)
        kept = [run for run in runs if await store.get_run(run.run_id) is not None]
        assert 4 <= len(kept) <= 32, f"{len(kept)} runs of 16 KiB kept for {budget} bytes"
        assert kept == runs[-len(kept) :]
        assert len(await settled(store, runs[-1].run_id, 3)) == 3
        assert await store.read_events(runs[0].run_id, 0) == []
        # Resources and sessions too (a store may trim when a run ends: end one that writes a tenth of the
        # budget).
        resources = [uuid.uuid4() for _ in range(24)]
        sessions = [uuid.uuid4() for _ in range(24)]
        for resource_id, session_id in zip(resources, sessions, strict=True):
            await store.put_resource(resource_id, uuid.uuid4().hex.encode() * 512, owner="alice")
            urls = [f"http://h/acp/resources/{uuid.uuid4()}?{'x' * 2000}" for _ in range(8)]
            assert await store.extend_session(session_id, urls, owner="alice") is not None
        last = await new_run(store)
        await store.append_events(last.run_id, [bulky(0, budget // 8)])
        await end(store, last)
        kept_resources = [r for r in resources if await store.get_resource(r) is not None]
        kept_sessions = [s for s in sessions if await store.get_session(s) is not None]
        assert resources[0] not in kept_resources and sessions[0] not in kept_sessions
        assert kept_resources or kept_sessions
        assert len(kept_resources) + len(kept_sessions) <= 32
        # The run still going has lost nothing.
        record = await store.get_run(going.run_id)
        assert record is not None and record.run.status is RunStatus.CREATED
        assert (await settled(store, going.run_id, 9))[1:] == going_events
