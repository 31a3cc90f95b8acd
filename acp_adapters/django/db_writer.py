"""Appending a run's events in batches: one transaction for all that came while the last one ran.

An agent streaming parts emits one event at a time, and a transaction per event would cap a stream at
the database's commit rate. Here ``append`` queues the events and returns; one flushing task per run
writes everything queued so far in one transaction, then whatever came meanwhile, and so on.

Rules this module keeps:

* Order: a run's events are written in the order they were appended, by one task at a time.
* Read-your-writes: :meth:`EventWriter.settle` waits until the run's queue is written; the store calls
  it before anything that must see the events (reading them, counting them, changing the run), so that
  nobody, in this process or another, sees a run's new status before the events that led to it.
* Backpressure: an append waits for the flush once ``max_pending`` events are queued.
* Failure: a batch that cannot be written (after ``retries``) is dropped and its error is raised by the
  run's next append or settle, so that the engine learns of it and fails the run.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence

from acp_adapters.core.store import EventRecord, StoreUnavailable

__all__ = ["EventWriter"]

logger = logging.getLogger("acp_adapters.django.store")


class _Queue:
    __slots__ = ("appended", "error", "events", "progress", "task", "written")

    def __init__(self) -> None:
        self.events: list[EventRecord] = []
        self.task: asyncio.Task[None] | None = None
        self.error: StoreUnavailable | None = None
        #: Events ever queued, and ever written (or dropped): settle waits for the second to reach the first.
        self.appended = 0
        self.written = 0
        self.progress = asyncio.Event()


class EventWriter:
    """Queues and writes events; ``write(run_id, events)`` stores a batch and returns the run's count."""

    def __init__(
        self,
        write: Callable[[uuid.UUID, list[EventRecord]], Awaitable[int | None]],
        written: Callable[[uuid.UUID, int | None], None],
        *,
        max_pending: int = 1000,
        retries: int = 2,
    ) -> None:
        self._write = write
        self._written = written
        self.max_pending = max_pending
        self.retries = retries
        self._queues: dict[uuid.UUID, _Queue] = {}

    async def append(self, run_id: uuid.UUID, events: Sequence[EventRecord]) -> None:
        """Queue the events (waiting only when ``max_pending`` are queued for the run)."""
        queue = self._queues.get(run_id)
        if queue is None:
            queue = self._queues[run_id] = _Queue()
        self._raise_error(run_id, queue)
        queue.events.extend(events)
        queue.appended += len(events)
        if queue.task is None:
            queue.task = asyncio.get_running_loop().create_task(self._flush(run_id, queue))
        if len(queue.events) >= self.max_pending:
            await self.settle(run_id)

    async def settle(self, run_id: uuid.UUID) -> None:
        """Wait until what is queued for the run now is written; raise the error of a failed batch.

        Events appended meanwhile are not waited for: a reader never waits on a writer that keeps going.
        """
        queue = self._queues.get(run_id)
        if queue is None:
            return
        target = queue.appended
        while queue.written < target:
            await queue.progress.wait()
        self._raise_error(run_id, queue)

    async def settle_all(self) -> None:
        """Write every queue (when the store closes); errors are logged."""
        for run_id in list(self._queues):
            try:
                await self.settle(run_id)
            except StoreUnavailable as exc:
                logger.warning("events of run %s were not written: %s", run_id, exc)

    async def _flush(self, run_id: uuid.UUID, queue: _Queue) -> None:
        try:
            while queue.events:
                batch, queue.events = queue.events, []
                try:
                    count = await self._write_retrying(run_id, batch)
                except StoreUnavailable as exc:
                    dropped = len(batch) + len(queue.events)
                    logger.warning("dropped %d event(s) of run %s: %s", dropped, run_id, exc)
                    queue.error = exc
                    queue.events = []
                    queue.written = queue.appended
                    return
                queue.written += len(batch)
                self._written(run_id, count)
                self._advance(queue)
        finally:
            queue.task = None
            self._advance(queue)
            self._forget(run_id, queue)

    @staticmethod
    def _advance(queue: _Queue) -> None:
        queue.progress.set()
        queue.progress = asyncio.Event()

    async def _write_retrying(self, run_id: uuid.UUID, batch: list[EventRecord]) -> int | None:
        for attempt in range(self.retries + 1):
            try:
                return await self._write(run_id, batch)
            except StoreUnavailable:
                if attempt == self.retries:
                    raise
                await asyncio.sleep(0.1 * 2**attempt)
        raise AssertionError("unreachable")

    def _raise_error(self, run_id: uuid.UUID, queue: _Queue) -> None:
        error, queue.error = queue.error, None
        if error is not None:
            self._forget(run_id, queue)
            raise error

    def _forget(self, run_id: uuid.UUID, queue: _Queue) -> None:
        if (
            not queue.events
            and queue.task is None
            and queue.error is None
            and self._queues.get(run_id) is queue
        ):
            del self._queues[run_id]
