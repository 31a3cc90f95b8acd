"""In-process wake-ups and signal queues: what :class:`~acp_adapters.core.store.Store` gives a store
that does not implement its own waits and signals.

Rules this module keeps:

* Only this process is woken: a reader in another process learns of new events by polling (the
  store's ``poll_interval``), a signal reaches a worker of this process only. That is all a store of
  one process needs; a shared store implements its own signals (the base requires it).
* Nothing outlives its use: a run's waiters leave when woken or timed out, its signal queue when the
  run ends (the base drops it on the write that ends the run).
"""

from __future__ import annotations

import asyncio
import uuid

from .store_records import Signal

__all__ = ["LocalWaits"]


class LocalWaits:
    """The waiting readers and the signal queues of the runs of one store instance."""

    __slots__ = ("_queues", "_waiters")

    def __init__(self) -> None:
        self._waiters: dict[uuid.UUID, list[asyncio.Future[None]]] = {}
        self._queues: dict[uuid.UUID, asyncio.Queue[Signal]] = {}

    # events ---------------------------------------------------------------------------------------
    def waiter(self, run_id: uuid.UUID) -> asyncio.Future[None]:
        """A future that :meth:`wake` resolves; register it *before* looking for events, so that an
        append made while looking is not missed. Pass it to :meth:`wait` or :meth:`leave`."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(run_id, []).append(waiter)
        return waiter

    async def wait(self, run_id: uuid.UUID, waiter: asyncio.Future[None], timeout: float) -> None:
        """Wait until the run's events are woken, or ``timeout`` seconds."""
        timer = asyncio.get_running_loop().call_later(timeout, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self.leave(run_id, waiter)

    def leave(self, run_id: uuid.UUID, waiter: asyncio.Future[None]) -> None:
        """Forget a waiter that will not wait (or has waited)."""
        waiters = self._waiters.get(run_id)
        if waiters is not None and waiter in waiters:
            waiters.remove(waiter)
            if not waiters:
                del self._waiters[run_id]

    def wake(self, run_id: uuid.UUID) -> None:
        """Wake every reader waiting for the run's events."""
        for waiter in self._waiters.pop(run_id, ()):
            _resolve(waiter)

    # signals --------------------------------------------------------------------------------------
    def queue(self, run_id: uuid.UUID) -> asyncio.Queue[Signal]:
        """The run's signal queue (created on first use)."""
        queue = self._queues.get(run_id)
        if queue is None:
            queue = self._queues[run_id] = asyncio.Queue()
        return queue

    def ended(self, run_id: uuid.UUID) -> None:
        """The run has ended: drop its signal queue (a receiver still waiting waits on, unsignalled)."""
        self._queues.pop(run_id, None)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
