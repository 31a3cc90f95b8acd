"""The store writes of one run executing in this process, and its creation left for its first write.

A run that nobody else can know of yet (the engine's rules: a sync run without a session or an
``Idempotency-Key``, whose id is first told by the answer its creator waits for) need not be in the
store while it executes: no other request can name it. :class:`RunWrites` then keeps its creation
and what it emits in process and writes them with the run's first write of its own (its ending, its
await): a short run costs the store one write (one script, one statement) instead of two. The engine
writes the creation anyway once the run has executed for a moment (``LISTEN_AFTER``), so that a run
that lasts is in the store, leased and reachable by signals, as every other run is.

Rules this module keeps:

* Order: what the run emitted before its creation was written is written with it, in order; a write
  that comes while the creation is being written waits for it.
* Nothing is lost: a creation whose write failed stays pending, and goes with the next write.
* A run's moves are checked as the store checks them: a move whose expected statuses do not hold the
  run's status is refused after the creation is written, exactly as without the deferral.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from .models import Message, RunStatus
from .store import EventRecord, RunRecord, Store

__all__ = ["RunWrites"]


@dataclasses.dataclass
class _Creation:
    """A creation not written yet: :meth:`Store.create_and_transition`'s arguments so far."""

    record: RunRecord
    first_event: EventRecord
    changes: dict[str, Any]
    events: list[EventRecord]

    @property
    def status(self) -> RunStatus:
        return RunStatus(self.changes.get("status", self.record.run.status))


class RunWrites:
    """The writes of one run executing here (see the module docstring)."""

    def __init__(self, store: Store, run_id: uuid.UUID) -> None:
        self.store = store
        self.run_id = run_id
        self._unwritten: _Creation | None = None
        self._writing = asyncio.Lock()

    def defer_creation(
        self,
        record: RunRecord,
        first_event: EventRecord,
        changes: Mapping[str, Any],
        events: Sequence[EventRecord],
    ) -> None:
        """Keep the run's creation (``create_and_transition``'s arguments) for its first write."""
        self._unwritten = _Creation(record, first_event, dict(changes), list(events))

    @property
    def unwritten(self) -> bool:
        """Whether the run's creation is still to be written (or being written)."""
        return self._unwritten is not None or self._writing.locked()

    async def write_creation(self) -> None:
        """Write the creation kept for later now, with what the run emitted since; no-op otherwise."""
        async with self._writing:
            creation, self._unwritten = self._unwritten, None
            if creation is None:
                return
            try:
                await self.store.create_and_transition(
                    creation.record, creation.first_event, creation.changes, events=creation.events
                )
            except BaseException:
                self._unwritten = creation
                raise

    async def append(self, events: Sequence[EventRecord], output: list[Message] | None = None) -> None:
        """Append ``events`` and, if given, set the run's ``output`` with them (written behind)."""
        if self.unwritten:
            async with self._writing:
                creation = self._unwritten
                if creation is not None:
                    creation.events.extend(events)
                    if output is not None:
                        creation.changes["output"] = output
                    return
        if output is not None:
            await self.store.append_and_update(self.run_id, events, {"output": output})
        else:
            await self.store.append_events(self.run_id, events)

    async def transition(
        self, changes: Mapping[str, Any], expect: Collection[RunStatus], events: Sequence[EventRecord]
    ) -> RunRecord | None:
        """:meth:`Store.transition` of the run; with its creation, if that is still to be written."""
        if self.unwritten:
            async with self._writing:
                creation = self._unwritten
                if creation is not None and creation.status in expect:
                    self._unwritten = None
                    merged = {**creation.changes, **changes}
                    try:
                        await self.store.create_and_transition(
                            creation.record, creation.first_event, merged, events=[*creation.events, *events]
                        )
                    except BaseException:
                        self._unwritten = creation
                        raise
                    return RunRecord(creation.record.run.model_copy(update=merged), creation.record.owner)
            await self.write_creation()  # a move the status refuses: refused by the store, as always
        return await self.store.transition(self.run_id, changes, expect=expect, events=events)

    async def update(self, changes: Mapping[str, Any], expect: Collection[RunStatus]) -> RunRecord | None:
        """:meth:`Store.update_run` of the run, once its creation is written."""
        if self.unwritten:
            await self.write_creation()
        return await self.store.update_run(self.run_id, changes, expect=expect)
