"""A store in plain dictionaries: the example of ``docs/stores.md``.

It implements only the primitives the :class:`~acp_adapters.core.store.Store` base asks of a store of
one process, and passes the shipped conformance suite with one line (``tests/stores/test_dict_store.py``).
Its eviction looks at every record on each write: an example, not a store for production (use
:class:`~acp_adapters.core.memory_store.MemoryStore`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from acp_adapters.core.models import RunStatus
from acp_adapters.core.store import EventRecord, ResourceRecord, RunRecord, SessionRecord, Store

__all__ = ["DictStore"]

#: What one record costs beyond its payload, so that many small records cannot outgrow the budget.
RECORD_BYTES = 256


class DictStore(Store):
    """Runs, events, sessions, resources and idempotency keys in dictionaries, for one process.

    Takes the tunables of :class:`Store` as keywords (``retention``, ``max_finished_runs``,
    ``max_retained_bytes``); those left out follow the service's settings.
    """

    def __init__(self, **tunables: Any) -> None:
        super().__init__(**tunables)
        self._runs: dict[uuid.UUID, RunRecord] = {}
        self._events: dict[uuid.UUID, list[EventRecord]] = {}
        self._sessions: dict[uuid.UUID, SessionRecord] = {}
        self._resources: dict[uuid.UUID, ResourceRecord] = {}
        self._keys: dict[str, tuple[bytes, float]] = {}  # value, expires at
        #: What may go (finished runs, sessions, resources, keys), oldest first: when it ended or was
        #: last written, and the bytes counted for it.
        self._kept: dict[tuple[str, Any], tuple[float, int]] = {}
        self._bytes = 0
        self._finished = 0

    # runs -----------------------------------------------------------------------------------------
    async def create_run(self, record: RunRecord, first_event: EventRecord) -> None:
        self._runs[record.run.run_id] = record
        self._events[record.run.run_id] = [first_event]

    async def get_run(self, run_id: uuid.UUID) -> RunRecord | None:
        return self._runs.get(run_id)

    async def write_run(
        self,
        run_id: uuid.UUID,
        changes: Mapping[str, Any],
        *,
        expect: Collection[RunStatus] | None = None,
        events: Sequence[EventRecord] = (),
    ) -> RunRecord | None:
        # Atomic as it is: nothing here suspends.
        record = self._runs.get(run_id)
        if record is None or (expect is not None and record.run.status not in expect):
            return None
        if changes:
            record = self._runs[run_id] = RunRecord(record.run.model_copy(update=changes), record.owner)
        self._events[run_id].extend(events)
        if record.run.status.is_terminal and ("run", run_id) not in self._kept:
            self._finished += 1
            self._keep("run", run_id, RECORD_BYTES + sum(len(event.data) for event in self._events[run_id]))
        return record

    async def events_from(self, run_id: uuid.UUID, start: int) -> list[EventRecord]:
        return self._events.get(run_id, [])[start:]

    # sessions -------------------------------------------------------------------------------------
    async def get_session(self, session_id: uuid.UUID) -> SessionRecord | None:
        return self._sessions.get(session_id)

    async def write_session(self, record: SessionRecord, *, expect: SessionRecord | None) -> bool:
        if self._sessions.get(record.id) != expect:
            return False
        self._sessions[record.id] = record
        size = sum(map(len, record.history)) + len(record.state or "") + len(record.owner or "")
        self._keep("session", record.id, RECORD_BYTES * (1 + len(record.history)) + size)
        return True

    # resources and keys ---------------------------------------------------------------------------
    async def put_resource(self, resource_id: uuid.UUID, data: bytes, *, owner: str | None = None) -> None:
        self._resources[resource_id] = ResourceRecord(data, owner)
        self._keep("resource", resource_id, RECORD_BYTES + len(data) + len(owner or ""))

    async def get_resource(self, resource_id: uuid.UUID) -> ResourceRecord | None:
        return self._resources.get(resource_id)

    async def claim_key(self, key: str, value: bytes, ttl: float) -> bytes | None:
        now = time.monotonic()
        held = self._keys.get(key)
        if held is not None and held[1] > now:
            return held[0]
        self._keys[key] = (value, now + ttl)
        self._keep("key", key, RECORD_BYTES + len(key) + len(value))
        return None

    # what is kept ---------------------------------------------------------------------------------
    def _keep(self, kind: str, key: Any, size: int) -> None:
        """Count a record (as the youngest), then drop what is past retention, ttl or a bound."""
        self._bytes += size - self._kept.pop((kind, key), (0.0, 0))[1]
        self._kept[(kind, key)] = (time.monotonic(), size)
        now = time.monotonic()
        for (kind, key), (since, _) in list(self._kept.items()):
            expired = self._keys[key][1] <= now if kind == "key" else since <= now - self.retention
            too_many = kind == "run" and self._finished > self.max_finished_runs
            if expired or too_many or self._bytes > self.max_retained_bytes:
                self._drop(kind, key)

    def _drop(self, kind: str, key: Any) -> None:
        self._bytes -= self._kept.pop((kind, key))[1]
        if kind == "run":
            self._finished -= 1
            del self._runs[key], self._events[key]
        elif kind == "session":
            del self._sessions[key]
        elif kind == "resource":
            del self._resources[key]
        else:
            del self._keys[key]
