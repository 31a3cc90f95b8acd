"""Waking the coroutines that wait for a run's next event or signal, whichever process wrote it.

Rules this module keeps:

* A waiter says what it has seen (a count of events or of signals) and is woken once the run's count is
  higher, or the run is gone: a change made between its last read and its registration is never missed.
* Changes made by this process wake their waiters at once (:meth:`ChangeWatcher.changed`); changes made
  by other processes are found by one poll for all the runs this process waits on, every
  ``interval`` seconds while something changes, backing off to ``max_interval`` while nothing does.
* Waiting holds no thread and no database connection: only the poll queries, from one task.
* With PostgreSQL notifications (:mod:`acp_adapters.django.db.listen`), other processes' changes come
  through :meth:`ChangeWatcher.changed` too, and the poll slows to ``safety_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field

import anyio

__all__ = ["EVENTS", "SIGNALS", "ChangeWatcher", "Counters"]

logger = logging.getLogger("acp_adapters.django.store")

#: Index of each count in :data:`Counters`.
EVENTS = 0
SIGNALS = 1
#: Each existing run's ``(event_count, signal_count)``.
Counters = dict[uuid.UUID, tuple[int, int]]
_LATEST_KEPT = 10_000


@dataclass(eq=False)
class _Waiter:
    kind: int
    seen: int
    woken: asyncio.Event = field(default_factory=asyncio.Event)


class ChangeWatcher:
    """Wakes waiters on a run's counts; see the module docstring."""

    def __init__(
        self,
        poll: Callable[[Collection[uuid.UUID]], Awaitable[Counters]],
        *,
        interval: float = 0.05,
        max_interval: float = 0.5,
        safety_interval: float = 2.0,
    ) -> None:
        self._poll = poll
        self.interval = interval
        self.max_interval = max_interval
        #: The poll's pace while notifications arrive (:attr:`notified`): a safety net only.
        self.safety_interval = safety_interval
        self.notified = False
        self._current = interval
        self._waiters: dict[uuid.UUID, set[_Waiter]] = {}
        self._task: asyncio.Task[None] | None = None
        # The latest counts heard of, so that a waiter registering just after a change is not left to
        # the poll (the change's notification came between its read and its registration).
        self._latest: OrderedDict[uuid.UUID, list[int]] = OrderedDict()

    async def wait(
        self,
        run_id: uuid.UUID,
        kind: int,
        seen: int,
        timeout: float | None,  # noqa: ASYNC109 - a deadline its callers compute
    ) -> bool:
        """Wait until the run's ``kind`` count is above ``seen`` (or the run is gone).

        Returns ``False`` if ``timeout`` seconds passed first.
        """
        latest = self._latest.get(run_id)
        if latest is not None and latest[kind] > seen:
            return True
        waiter = _Waiter(kind, seen)
        self._waiters.setdefault(run_id, set()).add(waiter)
        self._current = self._fastest()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._poll_loop(), name="acp-django-store-poll"
            )
        try:
            if timeout is None:
                await waiter.woken.wait()
                return True
            with anyio.move_on_after(timeout):  # (cancel-safe, unlike wait_for on Python 3.10 and 3.11)
                await waiter.woken.wait()
            return waiter.woken.is_set()
        finally:
            waiters = self._waiters.get(run_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[run_id]

    def changed(self, run_id: uuid.UUID, kind: int, count: int | None) -> None:
        """The run's ``kind`` count is now ``count`` (``None``: the run is gone): wake who waits for it."""
        if count is not None:
            latest = self._latest.setdefault(run_id, [0, 0])
            latest[kind] = max(latest[kind], count)
            self._latest.move_to_end(run_id)
            if len(self._latest) > _LATEST_KEPT:
                self._latest.popitem(last=False)
        for waiter in self._waiters.get(run_id, ()):
            if waiter.kind == kind and (count is None or count > waiter.seen):
                waiter.woken.set()

    def _fastest(self) -> float:
        return self.safety_interval if self.notified else self.interval

    async def close(self) -> None:
        """Stop polling (waiters still waiting are left to their timeouts)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _poll_loop(self) -> None:
        while self._waiters:
            await asyncio.sleep(self._current)
            run_ids = list(self._waiters)
            if not run_ids:
                break
            try:
                found = await self._poll(run_ids)
            except Exception as exc:  # the database is down: waiters time out, polling goes on slowly
                logger.warning("polling the database for run changes failed: %s", exc)
                self._current = max(self.max_interval, self._fastest())
                continue
            woke = False
            for run_id in run_ids:
                counts = found.get(run_id)
                for waiter in self._waiters.get(run_id, ()):
                    if counts is None or counts[waiter.kind] > waiter.seen:
                        waiter.woken.set()
                        woke = True
            slowest = self.safety_interval if self.notified else self.max_interval
            self._current = self._fastest() if woke else min(self._current * 2, slowest)
