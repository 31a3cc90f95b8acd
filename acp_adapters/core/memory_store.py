"""The in-memory store: the default, for one process.

Rules this module keeps:

* Appending an event is O(1) and wakes only that run's readers.
* A finished run is kept for ``retention`` seconds, and at most ``max_finished_runs`` of them; a run
  that is still going is never evicted.
* Everything happens on the engine's event loop; nothing here is thread-safe, nothing needs to be.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from .models import Run, RunStatus
from .sse import run_of_event
from .store import EventRecord, ResourceRecord, RunRecord, SessionRecord, Signal, Store

__all__ = ["MemoryStore"]

_TERMINAL_EVENTS = frozenset({"run.completed", "run.failed", "run.cancelled"})
#: Finished runs compressed together: one compression per batch costs a fraction of one per run, and
#: the runs of a batch, much alike, compress to a fraction of their size alone.
_PACK_BATCH = 32


class _PackedBatch:
    """The event logs of several finished runs, compressed together."""

    __slots__ = ("blob",)

    def __init__(self, logs: list[bytes]) -> None:
        # Event JSON holds no raw newline nor NUL, so those join events and logs.
        self.blob = zlib.compress(b"\0".join(logs), 1)

    def log(self, position: int) -> bytes:
        return zlib.decompress(self.blob).split(b"\0")[position]


class _RunSlot:
    """A run: while it goes on, its snapshot and its log of events.

    Once it has ended, only its log is kept, as bytes (the run is its last event's ``run``, read back
    on demand), and then compressed with those of the runs that ended around it. A finished run thus
    leaves a couple of objects behind, not the hundred of its models and events: memory, and work for
    the garbage collector, that would grow with every run kept.
    """

    __slots__ = (
        "batch",
        "count",
        "events",
        "log",
        "owner",
        "position",
        "record",
        "signals",
        "status",
        "waiters",
    )

    def __init__(self, record: RunRecord, first_event: EventRecord) -> None:
        self.record: RunRecord | None = record
        self.owner = record.owner
        self.status = record.run.status
        self.events: list[EventRecord] = [first_event]
        self.count = 1
        self.log = b""
        self.batch: _PackedBatch | None = None
        self.position = 0
        self.waiters: list[asyncio.Future[None]] | None = None
        self.signals: asyncio.Queue[Signal] | None = None

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def finish(self) -> None:
        """Keep only the log, as bytes: the run has ended."""
        assert self.record is not None
        self.status = self.record.run.status
        self.log = b"\n".join(event.data for event in self.events)
        self.events = []
        self.record = None

    def all_events(self) -> list[EventRecord]:
        if self.record is not None:
            return self.events
        log = self.log if self.batch is None else self.batch.log(self.position)
        return [EventRecord(_type_of(data), data) for data in log.split(b"\n")]

    def current(self) -> RunRecord:
        if self.record is not None:
            return self.record
        last = self.all_events()[-1]
        return RunRecord(Run.model_validate_json(run_of_event(last)), self.owner)


def _pack(slots: list[_RunSlot]) -> None:
    batch = _PackedBatch([slot.log for slot in slots])
    for position, slot in enumerate(slots):
        slot.batch, slot.position, slot.log = batch, position, b""


def _type_of(data: bytes) -> str:
    # Every event starts with {"type":"...".
    return data[9 : data.index(b'"', 9)].decode()


class MemoryStore(Store):
    """Keeps everything in this process's memory.

    With several worker processes each has its own store, so a request must reach the worker that
    holds its run: use a shared store (Redis, the Django database) there.
    """

    retention: float
    max_finished_runs: int

    def __init__(self, *, retention: float | None = None, max_finished_runs: int | None = None) -> None:
        """``retention`` (seconds) and ``max_finished_runs`` bound the finished runs kept; left out,
        they come from the service's :class:`Settings`."""
        self._tune(retention=retention, max_finished_runs=max_finished_runs)
        self._to_pack: list[_RunSlot] = []
        # Runs are keyed by their UUID's int: a finished run then keeps no UUID object alive.
        self._runs: dict[int, _RunSlot] = {}
        self._finished: OrderedDict[int, float] = OrderedDict()
        self._sessions: dict[uuid.UUID, SessionRecord] = {}
        self._resources: dict[uuid.UUID, tuple[ResourceRecord, float]] = {}
        self._keys: dict[str, tuple[bytes, float]] = {}
        self._session_seen: dict[uuid.UUID, float] = {}

    # runs -----------------------------------------------------------------------------------------
    async def create_run(self, record: RunRecord, first_event: EventRecord) -> None:
        self._runs[record.run.run_id.int] = _RunSlot(record, first_event)

    async def get_run(self, run_id: uuid.UUID) -> RunRecord | None:
        slot = self._runs.get(run_id.int)
        return slot.current() if slot else None

    async def update_run(
        self,
        run_id: uuid.UUID,
        changes: Mapping[str, Any],
        *,
        expect: Collection[RunStatus] | None = None,
    ) -> RunRecord | None:
        slot = self._runs.get(run_id.int)
        if slot is None:
            return None
        if slot.record is None:  # the run has ended and changes no more
            return slot.current() if expect is None or slot.status in expect else None
        run = slot.record.run
        if expect is not None and run.status not in expect:
            return None
        run.__dict__.update(changes)  # what setattr would do, without pydantic's checks per field
        if run.status.is_terminal and run_id.int not in self._finished:
            self._finished[run_id.int] = time.monotonic()
            self._evict()
        return slot.record

    def _evict(self) -> None:
        horizon = time.monotonic() - self.retention
        while self._finished:
            key, finished = next(iter(self._finished.items()))
            if finished > horizon and len(self._finished) <= self.max_finished_runs:
                break
            del self._finished[key]
            slot = self._runs.pop(key, None)
            if slot is not None:
                slot.wake()
        while self._resources:
            resource_id = next(iter(self._resources))
            if self._resources[resource_id][1] > horizon:
                break
            del self._resources[resource_id]
        while self._session_seen:
            session_id = next(iter(self._session_seen))
            if self._session_seen[session_id] > horizon:
                break
            del self._session_seen[session_id]
            self._sessions.pop(session_id, None)

    # events ---------------------------------------------------------------------------------------
    async def append_events(self, run_id: uuid.UUID, events: Sequence[EventRecord]) -> None:
        slot = self._runs.get(run_id.int)
        if slot is None:
            return
        slot.events.extend(events)
        slot.count += len(events)
        if events[-1].type in _TERMINAL_EVENTS:
            slot.finish()
            self._to_pack.append(slot)
            if len(self._to_pack) == _PACK_BATCH:
                # Runs evicted meanwhile are packed too: their memory goes with the batch's.
                _pack(self._to_pack)
                self._to_pack = []
        if slot.waiters:
            slot.wake()

    async def read_events(self, run_id: uuid.UUID, start: int, timeout: float = 0.0) -> list[EventRecord]:
        slot = self._runs.get(run_id.int)
        if slot is None:
            return []
        if slot.count <= start and timeout > 0:
            loop = asyncio.get_running_loop()
            waiter = loop.create_future()
            if slot.waiters is None:
                slot.waiters = []
            slot.waiters.append(waiter)
            timer = loop.call_later(timeout, _time_out, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                if slot.waiters is not None and waiter in slot.waiters:
                    slot.waiters.remove(waiter)
        if slot.count <= start:
            return []
        return slot.all_events()[start:]

    async def count_events(self, run_id: uuid.UUID) -> int:
        slot = self._runs.get(run_id.int)
        return slot.count if slot else 0

    # signals --------------------------------------------------------------------------------------
    def _signals(self, run_id: uuid.UUID) -> asyncio.Queue[Signal] | None:
        slot = self._runs.get(run_id.int)
        if slot is None:
            return None
        if slot.signals is None:
            slot.signals = asyncio.Queue()
        return slot.signals

    async def send_signal(self, run_id: uuid.UUID, signal: Signal) -> None:
        queue = self._signals(run_id)
        if queue is not None:
            queue.put_nowait(signal)

    async def receive_signal(self, run_id: uuid.UUID) -> Signal:
        queue = self._signals(run_id)
        if queue is None:
            await asyncio.Event().wait()  # the run is gone: nothing will ever come
        assert queue is not None
        return await queue.get()

    # sessions -------------------------------------------------------------------------------------
    async def get_session(self, session_id: uuid.UUID) -> SessionRecord | None:
        return self._sessions.get(session_id)

    async def claim_session(self, record: SessionRecord) -> SessionRecord:
        known = self._sessions.setdefault(record.id, record)
        self._touch_session(record.id)
        return known

    async def put_session(self, record: SessionRecord) -> None:
        self._sessions[record.id] = record
        self._touch_session(record.id)

    async def extend_session(
        self,
        session_id: uuid.UUID,
        history: Sequence[str],
        *,
        state: str | None = None,
        owner: str | None = None,
    ) -> SessionRecord | None:
        record = self._sessions.get(session_id)
        if record is None:
            record = self._sessions[session_id] = SessionRecord(id=session_id, owner=owner)
        elif record.owner != owner:
            return None
        record.history.extend(history)
        if state is not None:
            record.state = state
        self._touch_session(session_id)
        return record

    def _touch_session(self, session_id: uuid.UUID) -> None:
        self._session_seen.pop(session_id, None)
        self._session_seen[session_id] = time.monotonic()

    # resources ------------------------------------------------------------------------------------
    async def put_resource(self, resource_id: uuid.UUID, data: bytes, *, owner: str | None = None) -> None:
        self._resources[resource_id] = (ResourceRecord(data, owner), time.monotonic())

    async def get_resource(self, resource_id: uuid.UUID) -> ResourceRecord | None:
        entry = self._resources.get(resource_id)
        return entry[0] if entry else None

    # keys -----------------------------------------------------------------------------------------
    async def claim_key(self, key: str, value: bytes, ttl: float) -> bytes | None:
        now = time.monotonic()
        held = self._keys.get(key)
        if held is not None and held[1] > now:
            return held[0]
        self._keys[key] = (value, now + ttl)
        return None


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
