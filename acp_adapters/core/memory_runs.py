"""The in-memory store's records of runs, packed once ended, and what each kept record costs in bytes.

Rules this module keeps:

* A finished run keeps only its event log, as bytes, and unless large it is compressed with the logs of
  the runs that ended around it (:class:`Packer`): one compression per batch, not one per run.
* What a kept record costs is its payload plus a fixed cost per record (:data:`RECORD_BYTES`), so that
  many small records cannot outgrow a budget their payloads alone would fit in.
"""

from __future__ import annotations

import asyncio
import zlib

from .events import run_of_event
from .models import Run
from .store import EventRecord, ResourceRecord, RunRecord, SessionRecord, Signal

__all__ = ["RECORD_BYTES", "URL_BYTES", "Packer", "RunSlot", "key_size", "resource_size", "session_size"]

#: What one kept record costs beyond its payload (its slot, dictionary entries, timestamps), and one
#: history URL beyond its characters (a ``str`` and a list slot): counted so that many small records
#: cannot outgrow the budget that their payloads alone would fit in.
RECORD_BYTES = 256
URL_BYTES = 64
#: Finished runs compressed together: one compression per batch costs a fraction of one per run, and
#: the runs of a batch, much alike, compress to a fraction of their size alone. A batch closes at
#: ``_PACK_BATCH`` runs or ``_PACK_BYTES`` of logs; a log of ``_PACK_MAX_LOG`` or more is kept as it
#: is (compressing it would hold the event loop for milliseconds). A batch lives until its last run
#: is evicted, and its runs are evicted together (oldest first): the bytes of evicted runs still held
#: that way are those of one batch at most.
_PACK_BATCH = 32
_PACK_BYTES = 256 * 1024
_PACK_MAX_LOG = 64 * 1024


class _PackedBatch:
    """The event logs of several finished runs, compressed together."""

    __slots__ = ("blob",)

    def __init__(self, logs: list[bytes]) -> None:
        # Event JSON holds no raw newline nor NUL, so those join events and logs.
        self.blob = zlib.compress(b"\0".join(logs), 1)

    def log(self, position: int) -> bytes:
        return zlib.decompress(self.blob).split(b"\0")[position]


class RunSlot:
    """A run: while it goes on, its snapshot and its log of events.

    Once it has ended, only its log is kept, as bytes (the run is its last event's ``run``, read back
    on demand), and then, unless large, compressed with those of the runs that ended around it. A
    finished run thus leaves a couple of objects behind, not the hundred of its models and events:
    memory, and work for the garbage collector, that would grow with every run kept.
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
        "size",
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
        self.size = 0  # the bytes counted for it once it has ended
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


class Packer:
    """The finished runs waiting to be compressed together, until their batch closes."""

    __slots__ = ("_bytes", "_slots")

    def __init__(self) -> None:
        self._slots: list[RunSlot] = []
        self._bytes = 0

    def add(self, slot: RunSlot) -> None:
        """Queue a run that has just ended (its ``size`` counted), unless its log is too large to pack;
        close the batch when full. Runs evicted meanwhile are packed too (with their log dropped)."""
        if slot.size >= _PACK_MAX_LOG:
            return
        self._slots.append(slot)
        self._bytes += slot.size
        if len(self._slots) == _PACK_BATCH or self._bytes >= _PACK_BYTES:
            batch = _PackedBatch([queued.log for queued in self._slots])
            for position, queued in enumerate(self._slots):
                queued.batch, queued.position, queued.log = batch, position, b""
            self._slots = []
            self._bytes = 0


def _type_of(data: bytes) -> str:
    # Every event starts with {"type":"...".
    return data[9 : data.index(b'"', 9)].decode()


def session_size(record: SessionRecord) -> int:
    urls = record.history
    return (
        RECORD_BYTES
        + sum(map(len, urls))
        + URL_BYTES * len(urls)
        + len(record.state or "")
        + len(record.owner or "")
    )


def resource_size(record: ResourceRecord) -> int:
    return RECORD_BYTES + len(record.data) + len(record.owner or "")


def key_size(key: str, value: bytes) -> int:
    return RECORD_BYTES + len(key) + len(value)
