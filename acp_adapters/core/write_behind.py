"""Event appends written behind: queued per run and written in batches, without holding up the agent.

An agent streaming parts emits one event at a time, and a round trip per event (a Redis script, a
database transaction) would cap a stream at the backend's rate. :class:`EventBatcher` queues a run's
events and returns; one flushing task per run hands everything queued so far to the store's
``flush(run_id, events, changes)`` in one call, then whatever came meanwhile, and so on. Changes of the
run that need no status check (its output, once a message is complete) may be queued with the events
(``append(run_id, events, changes)``): they are written with them, the latest value of each field.
:class:`BatchedEventsStore` is the part of a shared store built on it (Redis, the Django database).

Rules this module keeps:

* Order: a run's events are flushed in the order they were appended, by one task at a time.
* Read-your-writes: :meth:`EventBatcher.settle` waits until what is queued for the run now is written;
  a store settles before anything that must see the events (changing the run, counting its events),
  so that nobody, in this process or another, sees a run's new status before the events that led to
  it. Events appended meanwhile are not waited for: a reader never waits on a writer that keeps going.
* One round trip: :meth:`EventBatcher.write_with` hands what is queued for the run (events and changes)
  to the store's own write of the run (a status change, its ending) instead of waiting for a flush of
  its own; the store writes both in one step (a store opts in with
  ``BatchedEventsStore.writes_queued_with_change``). A short run's last message and its ending are
  one write.
* Backpressure: an append waits for the flush once ``max_pending`` events are queued for the run.
* Outage: a batch whose flush raises :class:`StoreUnavailable` is tried ``retries`` more times (after
  0.1 s, 0.2 s, ...); one that still fails, or fails otherwise, is dropped, logged, and its error raised
  by the run's next append or settle, so that the engine learns of it and fails the run.
* Fork and event loop: the flushing tasks belong to one process and one loop; a batcher used in a forked
  child (or on another loop) starts empty, so the parent's events are written once, by the parent.
* Close: :meth:`EventBatcher.close` writes every queue; what fails then is logged (nobody is left to
  report it to).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from .models import RunStatus
from .process import current_pid
from .store import EventRecord, RunRecord, Store, StoreUnavailable

__all__ = ["BatchedEventsStore", "EventBatcher", "Flush"]

#: Writes a batch of one run's events, in order, and the changes queued with them (``{}``: none), in one
#: step (one script call, one transaction).
Flush = Callable[[uuid.UUID, list[EventRecord], dict[str, Any]], Awaitable[None]]

_logger = logging.getLogger(__name__)

T = TypeVar("T")


class _Queue:
    __slots__ = ("appended", "changes", "error", "events", "lock", "progress", "task", "written")

    def __init__(self) -> None:
        self.events: list[EventRecord] = []
        #: Changes of the run to write with the events (the latest value of each field).
        self.changes: dict[str, Any] = {}
        self.task: asyncio.Task[None] | None = None
        self.error: Exception | None = None
        #: Events ever queued, and ever written (or dropped): settle waits for the second to reach the first.
        self.appended = 0
        self.written = 0
        self.progress = asyncio.Event()
        #: Held by whoever writes a batch of the run's events (the flushing task, or a write of the run
        #: taking them along): batches are written in the order they were taken.
        self.lock = asyncio.Lock()


class EventBatcher:
    """Queues a run's events and flushes them in batches (see the module docstring).

    :param flush: writes one batch of one run's events.
    :param max_pending: events queued for a run past which an append waits for the flush.
    :param retries: further tries of a batch whose flush raised :class:`StoreUnavailable`.
    :param write_behind: ``False``: each append flushes its events before it returns (no queue, no
        retry: the error goes straight to the caller).
    :param logger: where dropped batches are reported.
    """

    def __init__(
        self,
        flush: Flush,
        *,
        max_pending: int = 1000,
        retries: int = 2,
        write_behind: bool = True,
        logger: logging.Logger = _logger,
    ) -> None:
        self._flush_batch = flush
        self.max_pending = max_pending
        self.retries = retries
        self.write_behind = write_behind
        self._logger = logger
        self._queues: dict[uuid.UUID, _Queue] = {}
        self._owner: tuple[int, asyncio.AbstractEventLoop] | None = None

    async def append(
        self, run_id: uuid.UUID, events: Sequence[EventRecord], changes: Mapping[str, Any] | None = None
    ) -> None:
        """Queue the events, and ``changes`` of the run to write with them (waiting only when
        ``max_pending`` events are queued for the run)."""
        if not self.write_behind:
            await self._flush_batch(run_id, list(events), dict(changes or {}))
            return
        queues = self._here()
        queue = queues.get(run_id)
        if queue is None:
            queue = queues[run_id] = _Queue()
        self._raise_error(run_id, queue)
        queue.events.extend(events)
        if changes:
            queue.changes.update(changes)
        queue.appended += len(events)
        if queue.task is None:
            queue.task = asyncio.get_running_loop().create_task(self._flush(run_id, queue))
        if len(queue.events) >= self.max_pending:
            await self.settle(run_id)

    async def settle(self, run_id: uuid.UUID) -> None:
        """Wait until what is queued for the run now is written; raise the error of a failed batch."""
        queue = self._here().get(run_id)
        if queue is None:
            return
        target = queue.appended
        while queue.written < target:
            await queue.progress.wait()
        self._raise_error(run_id, queue)

    async def write_with(
        self, run_id: uuid.UUID, write: Callable[[list[EventRecord], dict[str, Any]], Awaitable[T]]
    ) -> T:
        """Call ``write`` with the events and changes queued for the run (taken off the queue), once the
        batch being flushed, if any, is written: the store writes them in its own step, one round trip
        for both.

        Raises the error of a failed batch before, without calling ``write``; an error of ``write`` goes
        to the caller (its events are not tried again).
        """
        queue = self._here().get(run_id) if self.write_behind else None
        if queue is None:
            return await write([], {})
        async with queue.lock:
            self._raise_error(run_id, queue)
            events, queue.events = queue.events, []
            changes, queue.changes = queue.changes, {}
            try:
                return await write(events, changes)
            finally:
                queue.written += len(events)
                self._advance(queue)
                self._forget(run_id, queue)

    async def close(self) -> None:
        """Write every queue (the store is closing); errors are logged."""
        for run_id in list(self._here()):
            try:
                await self.settle(run_id)
            except Exception as exc:
                self._logger.warning("events of run %s were not written: %s", run_id, exc)

    def _here(self) -> dict[uuid.UUID, _Queue]:
        """The queues of this process and event loop (those of a parent process or an old loop are
        not ours to flush or wait for)."""
        owner = (current_pid(), asyncio.get_running_loop())
        if self._owner != owner:
            self._owner, self._queues = owner, {}
        return self._queues

    async def _flush(self, run_id: uuid.UUID, queue: _Queue) -> None:
        try:
            while queue.events:
                async with queue.lock:
                    batch, queue.events = queue.events, []
                    changes, queue.changes = queue.changes, {}
                    if not batch:  # a write of the run took them along
                        return
                    try:
                        await self._flush_retrying(run_id, batch, changes)
                    except Exception as exc:
                        dropped = len(batch) + len(queue.events)
                        self._logger.warning("dropped %d event(s) of run %s: %s", dropped, run_id, exc)
                        queue.error = exc
                        queue.events, queue.changes = [], {}
                        queue.written = queue.appended
                        return
                    queue.written += len(batch)
                    self._advance(queue)
        finally:
            queue.task = None
            self._advance(queue)
            self._forget(run_id, queue)

    async def _flush_retrying(
        self, run_id: uuid.UUID, batch: list[EventRecord], changes: dict[str, Any]
    ) -> None:
        for attempt in range(self.retries):
            try:
                await self._flush_batch(run_id, batch, changes)
                return
            except StoreUnavailable:
                await asyncio.sleep(0.1 * 2**attempt)
        await self._flush_batch(run_id, batch, changes)

    @staticmethod
    def _advance(queue: _Queue) -> None:
        queue.progress.set()
        queue.progress = asyncio.Event()

    def _raise_error(self, run_id: uuid.UUID, queue: _Queue) -> None:
        error, queue.error = queue.error, None
        if error is not None:
            self._forget(run_id, queue)
            raise error

    def _forget(self, run_id: uuid.UUID, queue: _Queue) -> None:
        if (
            not queue.events
            and not queue.changes
            and queue.task is None
            and queue.error is None
            and self._queues.get(run_id) is queue
        ):
            del self._queues[run_id]


class BatchedEventsStore(Store):
    """The part of a shared store whose appends go through an :class:`EventBatcher` (``batcher``).

    A write of the run (:meth:`~Store.write_run`, and so a status change) and a count first settle the
    run's queue, then call the store's own :meth:`_change_run` and :meth:`_count_events`; appends go
    to the queue, and so do the changes of :meth:`~Store.append_and_update`. The batcher's flush is
    the store's :meth:`_flush`. The store's ``close`` calls ``batcher.close()``.
    """

    batcher: EventBatcher
    #: Whether the store writes the run's queued events within its own write of the run
    #: (:meth:`_change_run_with`, one round trip for both) rather than settling the queue first.
    writes_queued_with_change: ClassVar[bool] = False

    async def write_run(
        self,
        run_id: uuid.UUID,
        changes: Mapping[str, Any],
        *,
        expect: Collection[RunStatus] | None = None,
        events: Sequence[EventRecord] = (),
    ) -> RunRecord | None:
        if self.writes_queued_with_change:
            return await self.batcher.write_with(
                run_id,
                lambda queued, queued_changes: self._change_run_with(
                    run_id, queued, changes, expect, events, queued_changes
                ),
            )
        await self.batcher.settle(run_id)  # the events before the change come before it
        return await self._change_run(run_id, changes, expect, events)

    async def update_run(
        self,
        run_id: uuid.UUID,
        changes: Mapping[str, Any],
        *,
        expect: Collection[RunStatus] | None = None,
    ) -> RunRecord | None:
        return await self.write_run(run_id, changes, expect=expect)

    async def transition(
        self,
        run_id: uuid.UUID,
        changes: Mapping[str, Any],
        *,
        expect: Collection[RunStatus],
        events: Sequence[EventRecord],
    ) -> RunRecord | None:
        return await self.write_run(run_id, changes, expect=expect, events=events)

    async def append_events(self, run_id: uuid.UUID, events: Sequence[EventRecord]) -> None:
        if events:
            await self.batcher.append(run_id, events)

    async def append_and_update(
        self, run_id: uuid.UUID, events: Sequence[EventRecord], changes: Mapping[str, Any]
    ) -> None:
        if events:
            await self.batcher.append(run_id, events, changes)
        else:
            await self.update_run(run_id, changes)

    async def _flush(self, run_id: uuid.UUID, events: list[EventRecord], changes: dict[str, Any]) -> None:
        """Write a batch of the run's events (and the changes queued with them): the batcher's flush."""
        if changes:  # (no status check: they apply to a run that exists)
            await self._change_run_with(run_id, events, changes, None, ())
        else:
            await self._append_events(run_id, events)

    async def count_events(self, run_id: uuid.UUID) -> int:
        await self.batcher.settle(run_id)
        return await self._count_events(run_id)

    async def _change_run(
        self,
        run_id: uuid.UUID,
        changes: Mapping[str, Any],
        expect: Collection[RunStatus] | None,
        events: Sequence[EventRecord],
    ) -> RunRecord | None:
        """:meth:`~Store.write_run` in the backend, one atomic step; the run's queue is settled.

        A store implements this or :meth:`_change_run_with`; by default, the latter with nothing queued.
        """
        return await self._change_run_with(run_id, [], changes, expect, events)

    async def _change_run_with(
        self,
        run_id: uuid.UUID,
        queued: list[EventRecord],
        changes: Mapping[str, Any],
        expect: Collection[RunStatus] | None,
        events: Sequence[EventRecord],
        queued_changes: Mapping[str, Any] | None = None,
    ) -> RunRecord | None:
        """Append ``queued`` and set ``queued_changes`` (what is still queued for the run, written
        whatever the compare-and-set decides), then :meth:`_change_run`: one step. Implemented by a
        store that sets ``writes_queued_with_change`` (and by one that queues changes, for its flush)."""
        raise NotImplementedError

    @abstractmethod
    async def _append_events(self, run_id: uuid.UUID, events: list[EventRecord]) -> None:
        """Append a batch of the run's events in the backend, in one step."""

    @abstractmethod
    async def _count_events(self, run_id: uuid.UUID) -> int:
        """How many events the backend holds for the run (its queue is settled)."""
