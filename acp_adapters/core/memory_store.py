"""The in-memory store: the default, for one process.

Why one module over 300 lines: it is one class implementing the Store interface for every kind of
record (runs, events, signals, sessions, resources, keys), and its eviction by age and by bytes reads
and writes the same dictionaries as those methods. A run's record, the packing of finished runs and
what each record costs in bytes are in :mod:`.memory_runs`.

Rules this module keeps:

* Appending an event is O(1) and wakes only that run's readers.
* A finished run is kept for ``retention`` seconds, and at most ``max_finished_runs`` of them; a run
  that is still going is never evicted (the engine bounds those).
* Sessions and resources are kept ``retention`` seconds from their last use, idempotency keys for
  their ``ttl``.
* What is kept is bounded by bytes: past ``max_retained_bytes`` the oldest finished runs go first,
  then the oldest of resources, sessions and keys. The check costs nothing while under the budget.
* Everything happens on the engine's event loop; nothing here is thread-safe, nothing needs to be.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from .lifecycle import ENDING_EVENTS
from .memory_runs import RECORD_BYTES, URL_BYTES, Packer, RunSlot, key_size, resource_size, session_size
from .models import RunStatus
from .store import EventRecord, ResourceRecord, RunRecord, SessionRecord, Signal, Store

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    """Keeps everything in this process's memory.

    With several worker processes each has its own store, so a request must reach the worker that
    holds its run: use a shared store (Redis, the Django database) there.

    ``max_retained_bytes`` bounds what it keeps once done with: the event logs of finished runs
    (counted from the event that ends them, as written, before they are compressed), sessions (their
    history URLs, state URL and owner), resources (their bytes and owner) and idempotency keys (key
    and value), each with a fixed cost per record. :attr:`retained_bytes` is that count. Runs still
    going are not counted (the engine bounds them with ``max_active_runs`` and ``max_run_log_bytes``).
    """

    retention: float
    max_finished_runs: int
    max_retained_bytes: int

    def __init__(
        self,
        *,
        retention: float | None = None,
        max_finished_runs: int | None = None,
        max_retained_bytes: int | None = None,
    ) -> None:
        """``retention`` (seconds), ``max_finished_runs`` and ``max_retained_bytes`` bound what is kept;
        left out, they come from the service's :class:`Settings`."""
        self._tune(
            retention=retention, max_finished_runs=max_finished_runs, max_retained_bytes=max_retained_bytes
        )
        self._packer = Packer()
        # Runs are keyed by their UUID's int: a finished run then keeps no UUID object alive.
        self._runs: dict[int, RunSlot] = {}
        # The dictionaries below are ordered oldest first (by end, last use, claim), for eviction.
        self._finished: OrderedDict[int, float] = OrderedDict()
        self._sessions: dict[uuid.UUID, SessionRecord] = {}
        self._session_seen: dict[uuid.UUID, float] = {}
        self._session_bytes: dict[uuid.UUID, int] = {}
        self._resources: dict[uuid.UUID, tuple[ResourceRecord, float]] = {}
        self._keys: dict[str, tuple[bytes, float, float]] = {}  # value, claimed at, expires at
        self._retained = 0

    @property
    def retained_bytes(self) -> int:
        """The bytes counted against ``max_retained_bytes`` now (see the class docstring)."""
        return self._retained

    # runs -----------------------------------------------------------------------------------------
    async def create_run(self, record: RunRecord, first_event: EventRecord) -> None:
        self._runs[record.run.run_id.int] = RunSlot(record, first_event)

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

    async def transition(
        self,
        run_id: uuid.UUID,
        changes: Mapping[str, Any],
        *,
        expect: Collection[RunStatus],
        events: Sequence[EventRecord],
    ) -> RunRecord | None:
        # One step here: neither method suspends, so no reader comes between them.
        record = await self.update_run(run_id, changes, expect=expect)
        if record is not None and events:
            await self.append_events(run_id, events)
        return record

    def _evict(self) -> None:
        """Drop what is past its retention, and finished runs past ``max_finished_runs``."""
        now = time.monotonic()
        horizon = now - self.retention
        while self._finished:
            key, finished = next(iter(self._finished.items()))
            if finished > horizon and len(self._finished) <= self.max_finished_runs:
                break
            self._drop_run(key)
        while self._resources:
            resource_id = next(iter(self._resources))
            if self._resources[resource_id][1] > horizon:
                break
            self._drop_resource(resource_id)
        while self._session_seen:
            session_id = next(iter(self._session_seen))
            if self._session_seen[session_id] > horizon:
                break
            self._drop_session(session_id)
        self._expire_keys(now)

    def _shrink(self) -> None:
        """Evict until the bytes kept fit ``max_retained_bytes``: finished runs first, oldest first,
        then the oldest of resources, sessions and keys (by last use, or claim)."""
        budget = self.max_retained_bytes
        while self._retained > budget and self._finished:
            self._drop_run(next(iter(self._finished)))
        while self._retained > budget:
            heads: list[tuple[float, int]] = []
            if self._resources:
                heads.append((next(iter(self._resources.values()))[1], 0))
            if self._session_seen:
                heads.append((next(iter(self._session_seen.values())), 1))
            if self._keys:
                heads.append((next(iter(self._keys.values()))[1], 2))
            if not heads:
                break
            kind = min(heads)[1]
            if kind == 0:
                self._drop_resource(next(iter(self._resources)))
            elif kind == 1:
                self._drop_session(next(iter(self._session_seen)))
            else:
                self._drop_key(next(iter(self._keys)))

    def _drop_run(self, key: int) -> None:
        del self._finished[key]
        slot = self._runs.pop(key, None)
        if slot is None:
            return
        self._retained -= slot.size
        # A slot waiting in _to_pack for its batch keeps its object, not its log; a reader woken
        # below finds no events past its index.
        slot.size, slot.log, slot.count = 0, b"", 0
        slot.wake()

    # events ---------------------------------------------------------------------------------------
    async def append_events(self, run_id: uuid.UUID, events: Sequence[EventRecord]) -> None:
        slot = self._runs.get(run_id.int)
        if slot is None:
            return
        slot.events.extend(events)
        slot.count += len(events)
        if events[-1].type in ENDING_EVENTS:
            self._retain(run_id.int, slot)
        if slot.waiters:
            slot.wake()

    def _retain(self, key: int, slot: RunSlot) -> None:
        """Keep a run that has just ended: its log as bytes, counted, soon compressed."""
        slot.finish()
        slot.size = len(slot.log) + RECORD_BYTES
        self._retained += slot.size
        if key not in self._finished:  # ended by its event alone, without a status change
            self._finished[key] = time.monotonic()
        self._packer.add(slot)
        if self._retained > self.max_retained_bytes:
            self._shrink()

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
        known = self._sessions.get(record.id)
        if known is not None:
            return known  # someone's already: unchanged, not even its time of last use
        self._sessions[record.id] = record
        self._count_session(record.id, session_size(record))
        return record

    async def put_session(self, record: SessionRecord) -> None:
        self._sessions[record.id] = record
        self._count_session(record.id, session_size(record))

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
            size = session_size(record)
        elif record.owner != owner:
            return None
        else:
            size = self._session_bytes.get(session_id, 0)
        record.history.extend(history)
        size += sum(map(len, history)) + URL_BYTES * len(history)
        if state is not None:
            size += len(state) - len(record.state or "")
            record.state = state
        self._count_session(session_id, size)
        return record

    def _count_session(self, session_id: uuid.UUID, size: int) -> None:
        """Record the session's use now and its new size; evict if over the budget."""
        self._session_seen.pop(session_id, None)
        self._session_seen[session_id] = time.monotonic()
        self._retained += size - self._session_bytes.get(session_id, 0)
        self._session_bytes[session_id] = size
        if self._retained > self.max_retained_bytes:
            self._shrink()

    def _drop_session(self, session_id: uuid.UUID) -> None:
        del self._session_seen[session_id]
        self._sessions.pop(session_id, None)
        self._retained -= self._session_bytes.pop(session_id, 0)

    # resources ------------------------------------------------------------------------------------
    async def put_resource(self, resource_id: uuid.UUID, data: bytes, *, owner: str | None = None) -> None:
        if resource_id in self._resources:
            self._drop_resource(resource_id)
        record = ResourceRecord(data, owner)
        self._resources[resource_id] = (record, time.monotonic())
        self._retained += resource_size(record)
        if self._retained > self.max_retained_bytes:
            self._shrink()

    async def get_resource(self, resource_id: uuid.UUID) -> ResourceRecord | None:
        entry = self._resources.pop(resource_id, None)
        if entry is None:
            return None
        # A read is a use: the resource moves to the young end, for retention and eviction alike.
        self._resources[resource_id] = (entry[0], time.monotonic())
        return entry[0]

    def _drop_resource(self, resource_id: uuid.UUID) -> None:
        record, _ = self._resources.pop(resource_id)
        self._retained -= resource_size(record)

    # keys -----------------------------------------------------------------------------------------
    async def claim_key(self, key: str, value: bytes, ttl: float) -> bytes | None:
        now = time.monotonic()
        held = self._keys.get(key)
        if held is not None:
            if held[2] > now:
                return held[0]
            self._drop_key(key)
        self._expire_keys(now)
        self._keys[key] = (value, now, now + ttl)
        self._retained += key_size(key, value)
        if self._retained > self.max_retained_bytes:
            self._shrink()
        return None

    def _expire_keys(self, now: float) -> None:
        # Oldest claim first: with one ttl (the engine's), also the first to expire.
        while self._keys:
            key = next(iter(self._keys))
            if self._keys[key][2] > now:
                break
            self._drop_key(key)

    def _drop_key(self, key: str) -> None:
        value = self._keys.pop(key)[0]
        self._retained -= key_size(key, value)


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
