"""Appends of events, sent to Redis in batches per run without holding up the agent that emits them.

Rules this module keeps:

* A run's events reach Redis in the order they were appended: one flusher per run sends what piled up
  while its previous batch was on the way (one script call per batch, however many events).
* Anything else that touches the run's log or status first waits for its pending events
  (:meth:`Outbox.drain`): a status change is never seen before the events that preceded it.
* An agent cannot run ahead of Redis without bound: past ``limit`` pending events, appending waits.
* A batch that could not be sent (Redis unreachable) is reported by the run's next append or drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence

from acp_adapters.core.store import EventRecord

__all__ = ["Outbox"]


class _Pending:
    __slots__ = ("error", "events", "flusher")

    def __init__(self) -> None:
        self.events: list[EventRecord] = []
        self.flusher: asyncio.Task[None] | None = None
        self.error: BaseException | None = None


class Outbox:
    """The events of this process's runs that are on their way to Redis."""

    def __init__(
        self, send: Callable[[uuid.UUID, list[EventRecord]], Awaitable[None]], *, limit: int = 512
    ) -> None:
        self._send = send
        self._limit = limit
        self._runs: dict[uuid.UUID, _Pending] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def append(self, run_id: uuid.UUID, events: Sequence[EventRecord]) -> None:
        """Queue ``events``; returns at once unless too many are pending (or the last batch failed)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (or a forked child): the old flushers are gone
            self._loop, self._runs = loop, {}
        pending = self._runs.get(run_id)
        if pending is None:
            pending = self._runs[run_id] = _Pending()
        self._raise_error(run_id, pending)
        pending.events.extend(events)
        if pending.flusher is None:
            pending.flusher = loop.create_task(self._flush(run_id, pending))
        if len(pending.events) >= self._limit:
            await self.drain(run_id)

    async def drain(self, run_id: uuid.UUID) -> None:
        """Return once every event appended to the run so far is in Redis."""
        pending = self._runs.get(run_id)
        if pending is None:
            return
        while pending.flusher is not None:
            await asyncio.shield(pending.flusher)
        self._raise_error(run_id, pending)
        if self._runs.get(run_id) is pending and not pending.events:
            del self._runs[run_id]

    async def drain_all(self) -> None:
        """Send everything pending (the store is closing); errors are dropped."""
        for run_id in list(self._runs):
            with contextlib.suppress(Exception):  # nothing left to report them to
                await self.drain(run_id)

    def _raise_error(self, run_id: uuid.UUID, pending: _Pending) -> None:
        error, pending.error = pending.error, None
        if error is not None:
            raise error

    async def _flush(self, run_id: uuid.UUID, pending: _Pending) -> None:
        try:
            while pending.events:
                batch, pending.events = pending.events, []
                try:
                    await self._send(run_id, batch)
                except Exception as exc:
                    pending.error = exc
                    pending.events.clear()
        finally:
            pending.flusher = None
            if not pending.events and pending.error is None and self._runs.get(run_id) is pending:
                del self._runs[run_id]
