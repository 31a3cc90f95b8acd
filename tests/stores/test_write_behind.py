"""The write-behind event batcher that the Redis and database stores share, on a list as its backend."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest

from acp_adapters.core.store import EventRecord, StoreUnavailable
from acp_adapters.core.write_behind import EventBatcher

pytestmark = pytest.mark.anyio


def event(n: int) -> EventRecord:
    return EventRecord("generic", b'{"n":%d}' % n)


class Backend:
    """Keeps the batches it is given; fails the next ``failures`` of them with ``error``."""

    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.batches: list[tuple[uuid.UUID, list[EventRecord]]] = []
        #: The changes written with each batch.
        self.changes: list[tuple[uuid.UUID, dict[str, Any]]] = []
        self.failures = failures
        self.error = error or StoreUnavailable("the store is unreachable: down")
        self.calls = 0

    async def flush(self, run_id: uuid.UUID, events: list[EventRecord], changes: dict[str, Any]) -> None:
        self.calls += 1
        await asyncio.sleep(0.001)
        if self.failures:
            self.failures -= 1
            raise self.error
        self.batches.append((run_id, events))
        self.changes.append((run_id, changes))

    def events(self, run_id: uuid.UUID) -> list[EventRecord]:
        return [e for rid, batch in self.batches if rid == run_id for e in batch]


async def test_appends_return_at_once_and_settle_writes_them_in_order_in_few_batches() -> None:
    backend = Backend()
    batcher = EventBatcher(backend.flush)
    run_a, run_b = uuid.uuid4(), uuid.uuid4()
    for n in range(300):
        await batcher.append(run_a, [event(n)])
        await batcher.append(run_b, [event(-n)])
    assert len(backend.batches) < 10  # nothing waited for a flush
    await batcher.settle(run_a)
    assert backend.events(run_a) == [event(n) for n in range(300)]
    await batcher.close()
    assert backend.events(run_b) == [event(-n) for n in range(300)]
    assert backend.calls < 20


async def test_an_append_waits_once_max_pending_events_are_queued() -> None:
    backend = Backend()
    batcher = EventBatcher(backend.flush, max_pending=10)
    run_id = uuid.uuid4()
    await batcher.append(run_id, [event(n) for n in range(10)])
    assert backend.events(run_id) == [event(n) for n in range(10)]


async def test_settle_does_not_wait_for_events_appended_after_it_began() -> None:
    backend = Backend()
    batcher = EventBatcher(backend.flush)
    run_id = uuid.uuid4()
    await batcher.append(run_id, [event(0)])
    settling = asyncio.create_task(batcher.settle(run_id))
    await asyncio.sleep(0)
    await batcher.append(run_id, [event(1)])
    await asyncio.wait_for(settling, 1)
    assert event(0) in backend.events(run_id)


async def test_an_outage_is_retried_then_the_lost_batch_is_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = Backend(failures=2)
    batcher = EventBatcher(backend.flush, retries=2)
    run_id = uuid.uuid4()
    await batcher.append(run_id, [event(1)])
    await batcher.settle(run_id)  # two failures, then the third try writes it
    assert backend.events(run_id) == [event(1)] and backend.calls == 3

    backend.failures = 3
    with caplog.at_level(logging.WARNING):
        await batcher.append(run_id, [event(2)])
        with pytest.raises(StoreUnavailable):
            await batcher.settle(run_id)
    assert "dropped 1 event(s)" in caplog.text
    await batcher.settle(run_id)  # reported once
    await batcher.append(run_id, [event(3)])
    await batcher.settle(run_id)
    assert backend.events(run_id) == [event(1), event(3)]


async def test_an_error_that_is_no_outage_is_not_retried_and_reported_by_the_next_append() -> None:
    backend = Backend(failures=1, error=ValueError("bad batch"))
    batcher = EventBatcher(backend.flush, retries=2)
    run_id = uuid.uuid4()
    await batcher.append(run_id, [event(1)])
    await asyncio.sleep(0.05)
    with pytest.raises(ValueError, match="bad batch"):
        await batcher.append(run_id, [event(2)])
    assert backend.calls == 1
    await batcher.append(run_id, [event(3)])
    await batcher.close()
    assert backend.events(run_id) == [event(3)]


async def test_without_write_behind_an_append_returns_once_written_and_raises_its_error() -> None:
    backend = Backend()
    batcher = EventBatcher(backend.flush, write_behind=False)
    run_id = uuid.uuid4()
    await batcher.append(run_id, [event(1)])
    assert backend.events(run_id) == [event(1)]
    backend.failures = 1
    with pytest.raises(StoreUnavailable):
        await batcher.append(run_id, [event(2)])


def test_a_batcher_on_a_new_event_loop_starts_empty() -> None:
    # As in a forked child: the queues and flushing tasks of another loop (or process) are not its own.
    backend = Backend()
    batcher = EventBatcher(backend.flush)
    run_id = uuid.uuid4()

    async def append_and_leave() -> None:
        await batcher.append(run_id, [event(1)])

    old = asyncio.new_event_loop()
    old.run_until_complete(append_and_leave())  # its flushing task never ran

    async def settle_here() -> None:
        await asyncio.wait_for(batcher.settle(run_id), 1)  # nothing of the old loop's to wait for
        await batcher.append(run_id, [event(2)])
        await batcher.close()

    asyncio.run(settle_here())
    leftover = asyncio.all_tasks(old)
    for task in leftover:
        task.cancel()
    old.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
    old.close()
    assert backend.events(run_id) == [event(2)]


async def test_changes_queued_with_events_are_written_with_their_batch_the_latest_value_of_each() -> None:
    backend = Backend()
    batcher = EventBatcher(backend.flush)
    run_id = uuid.uuid4()
    await batcher.append(run_id, [event(1)], {"output": [1]})
    await batcher.append(run_id, [event(2)])
    await batcher.append(run_id, [event(3)], {"output": [1, 3]})
    await batcher.settle(run_id)
    assert backend.batches == [(run_id, [event(1), event(2), event(3)])]
    assert backend.changes == [(run_id, {"output": [1, 3]})]
    await batcher.append(run_id, [event(4)])
    await batcher.settle(run_id)
    assert backend.changes[-1] == (run_id, {})  # written once


async def test_a_write_of_the_run_takes_the_queued_changes_along_with_the_events() -> None:
    backend = Backend()
    batcher = EventBatcher(backend.flush)
    run_id = uuid.uuid4()
    await batcher.append(run_id, [event(1)], {"output": [1]})
    taken: list[tuple[list[EventRecord], dict[str, Any]]] = []

    async def write(events: list[EventRecord], changes: dict[str, Any]) -> str:
        taken.append((events, changes))
        return "written"

    assert await batcher.write_with(run_id, write) == "written"
    assert taken == [([event(1)], {"output": [1]})]
    await asyncio.sleep(0.01)  # the flushing task finds nothing left
    assert backend.calls == 0
    assert await batcher.write_with(run_id, write) == "written"
    assert taken[-1] == ([], {})


async def test_without_write_behind_changes_go_with_their_events_at_once() -> None:
    backend = Backend()
    batcher = EventBatcher(backend.flush, write_behind=False)
    run_id = uuid.uuid4()
    await batcher.append(run_id, [event(1)], {"output": [1]})
    assert backend.changes == [(run_id, {"output": [1]})]
