"""RunWrites: a run's creation kept for its first write loses nothing, keeps the order, and is refused
a move exactly as the store would refuse it (acp_adapters.core.run_writes)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from acp_adapters.core.lifecycle import ACTIVE
from acp_adapters.core.memory_store import MemoryStore
from acp_adapters.core.models import Message, MessagePart, Run, RunStatus
from acp_adapters.core.run_writes import RunWrites
from acp_adapters.core.store import EventRecord, RunRecord, StoreUnavailable
from acp_adapters.testing.stores import event, run_event

pytestmark = pytest.mark.anyio


class FlakyStore(MemoryStore):
    """A memory store whose next ``failures`` creations fail as an unreachable store's would, and whose
    creations take ``delay`` seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0
        self.delay = 0.0
        self.creations = 0

    async def create_and_transition(
        self,
        record: RunRecord,
        first_event: EventRecord,
        changes: Mapping[str, Any],
        *,
        events: Sequence[EventRecord],
    ) -> bool:
        await asyncio.sleep(self.delay)
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("down")
        self.creations += 1
        return await super().create_and_transition(record, first_event, changes, events=events)


def pending(writes: RunWrites) -> bool:
    return writes.unwritten  # (a call: mypy would keep a property's value narrowed across awaits)


def deferred(store: FlakyStore) -> tuple[RunWrites, Run, list[EventRecord]]:
    run = Run(agent_name="echo")
    first = run_event("run.created", run)
    moved = run.model_copy(update={"status": RunStatus.IN_PROGRESS})
    started = run_event("run.in-progress", moved)
    writes = RunWrites(store, run.run_id)
    writes.defer_creation(RunRecord(run, "alice"), first, {"status": RunStatus.IN_PROGRESS}, [started])
    return writes, run, [first, started]


async def test_the_first_write_creates_the_run_with_what_it_emitted_in_order() -> None:
    store = FlakyStore()
    writes, run, log = deferred(store)
    output = [Message(role="agent/echo", parts=[MessagePart(content="hi")])]
    await writes.append([event(1)])
    await writes.append([event(2)], output)
    assert pending(writes) and await store.get_run(run.run_id) is None
    ended = run.model_copy(update={"status": RunStatus.COMPLETED, "output": output})
    record = await writes.transition(
        {"status": RunStatus.COMPLETED}, ACTIVE, [run_event("run.completed", ended)]
    )
    assert record is not None and record.run.status is RunStatus.COMPLETED and record.owner == "alice"
    assert not pending(writes) and store.creations == 1
    assert await store.read_events(run.run_id, 0) == [
        *log,
        event(1),
        event(2),
        run_event("run.completed", ended),
    ]
    stored = await store.get_run(run.run_id)
    assert stored is not None and stored.run.output == output


async def test_a_creation_that_failed_goes_with_the_next_write() -> None:
    store = FlakyStore()
    writes, run, log = deferred(store)
    await writes.append([event(1)])
    store.failures = 1
    with pytest.raises(StoreUnavailable):
        await writes.write_creation()
    assert pending(writes)
    await writes.append([event(2)])
    store.failures = 1
    with pytest.raises(StoreUnavailable):
        await writes.transition({"status": RunStatus.AWAITING}, ACTIVE, [event("awaits")])
    assert await writes.transition({"status": RunStatus.AWAITING}, ACTIVE, [event("awaits")]) is not None
    assert await store.read_events(run.run_id, 0) == [*log, event(1), event(2), event("awaits")]


async def test_what_comes_while_the_creation_is_written_waits_for_it() -> None:
    store = FlakyStore()
    writes, run, log = deferred(store)
    store.delay = 0.05
    creating = asyncio.ensure_future(writes.write_creation())
    await asyncio.sleep(0.01)  # the creation is on its way: the append must not overtake it
    await writes.append([event(1)])
    await creating
    assert await store.read_events(run.run_id, 0) == [*log, event(1)]
    assert store.creations == 1


async def test_a_move_the_status_refuses_is_refused_after_the_creation() -> None:
    store = FlakyStore()
    writes, run, log = deferred(store)
    refused = await writes.transition({"status": RunStatus.IN_PROGRESS}, {RunStatus.AWAITING}, [event(1)])
    assert refused is None
    stored = await store.get_run(run.run_id)
    assert stored is not None and stored.run.status is RunStatus.IN_PROGRESS
    assert await store.read_events(run.run_id, 0) == log
    assert await writes.update({}, {RunStatus.IN_PROGRESS}) is not None
