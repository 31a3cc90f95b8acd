"""The store interface: where runs, their events, sessions and resources live.

Rules this module keeps:

* A store holds data, never behaviour: the run engine decides, the store records and wakes.
* Events are appended, one record each, and read by index: nothing rewrites a run's whole log.
* Every status change that two parties may race on is a compare-and-set (:meth:`Store.write_run`
  with the statuses it expects), so that exactly one of them wins (on one process or on many).
* A shared backend (Redis, a database) implements the same methods; ``shared = True`` tells the
  engine that other processes read and signal the same runs.
* Owners are identities or ``None`` (anonymous), never ``""``: the service maps an empty owner to
  ``None`` before anything reaches a store. A record with an owner is that owner's only; the engine
  and the service compare owners, the store records them.
* What a store keeps is bounded by bytes (``max_retained_bytes``), not only by count and age.
* A new backend implements few methods (see ``docs/stores.md``): everything derivable has a default
  here, built on one primitive of its kind (:meth:`~Store.write_run`, :meth:`~Store.events_from`,
  :meth:`~Store.write_session`). The stores of this package override the defaults with faster or
  atomic versions of their own; :meth:`Store.__new__` refuses a class that implements neither.
"""

from __future__ import annotations

import asyncio
import uuid
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from .models import RunStatus
from .settings import Settings
from .store_records import EventRecord, ResourceRecord, RunRecord, SessionRecord, Signal, StoreUnavailable
from .store_waits import LocalWaits

__all__ = [
    "EventRecord",
    "ResourceRecord",
    "RunRecord",
    "SessionRecord",
    "Signal",
    "Store",
    "StoreUnavailable",
]

S = TypeVar("S", bound="Store")

#: The field of :class:`Settings` each store tunable follows.
_SETTING_OF = {
    "retention": "run_retention",
    "max_finished_runs": "max_finished_runs",
    "lease_ttl": "lease_ttl",
    "max_retained_bytes": "max_retained_bytes",
}

#: What a store class must implement, of each kind: a primitive, or every method derived from it.
_EITHER = (
    (("write_run",), ("update_run", "transition", "append_events")),
    (("events_from",), ("read_events",)),
    (("write_session",), ("claim_session", "put_session", "extend_session")),
)
_CHECKED: set[type] = set()


def _missing(cls: type[Store]) -> list[str]:
    """What ``cls`` lacks of :data:`_EITHER` (and, shared, of its own signals)."""

    def own(name: str) -> bool:
        return getattr(cls, name) is not getattr(Store, name)

    missing = [
        f"{' and '.join(primitive)} (or {', '.join(derived)})"
        for primitive, derived in _EITHER
        if not all(map(own, primitive)) and not all(map(own, derived))
    ]
    if cls.shared and not (own("send_signal") and own("receive_signal")):
        missing.append("send_signal and receive_signal (a shared store delivers them across processes)")
    return missing


class Store(ABC):
    """Where the engine keeps runs, events, sessions and resources. All methods are coroutines.

    A new backend implements :meth:`create_run`, :meth:`get_run`, :meth:`write_run`,
    :meth:`events_from`, :meth:`get_session`, :meth:`write_session`, :meth:`put_resource`,
    :meth:`get_resource` and :meth:`claim_key`; a shared one also :meth:`send_signal`,
    :meth:`receive_signal`, :meth:`renew_leases` and :meth:`find_lost_runs`. ``docs/stores.md`` says
    what each promises; :mod:`acp_adapters.testing.stores` checks it.
    """

    #: True when other processes share this store (the engine then listens for their signals).
    shared: ClassVar[bool] = False
    #: Seconds between two looks for new events by a reader of a shared store that waits with the
    #: default :meth:`read_events` (a store of one process is woken in-process, without polling).
    poll_interval: float = 0.05

    #: The tunables: seconds a finished run (and a session, a resource) is kept; finished runs kept at
    #: most; seconds a lease lasts (shared stores); bytes kept at most once done with.
    retention: float
    max_finished_runs: int
    lease_ttl: float
    max_retained_bytes: int

    #: The tunables this store was not given, which :meth:`configure` takes from the service.
    _untuned: tuple[str, ...] = ()

    def __new__(cls: type[S], *args: Any, **kwargs: Any) -> S:
        """Refuse a class that implements neither a primitive nor the methods derived from it."""
        if cls not in _CHECKED:
            missing = _missing(cls)
            if missing:
                raise TypeError(f"{cls.__name__} must implement {'; '.join(missing)}")
            _CHECKED.add(cls)
        return super().__new__(cls)

    def __init__(
        self,
        *,
        retention: float | None = None,
        max_finished_runs: int | None = None,
        lease_ttl: float | None = None,
        max_retained_bytes: int | None = None,
    ) -> None:
        """The tunables left out (``None``) follow the service's :class:`Settings` (:meth:`configure`)."""
        self._tune(
            retention=retention,
            max_finished_runs=max_finished_runs,
            lease_ttl=lease_ttl,
            max_retained_bytes=max_retained_bytes,
        )

    def _tune(self, **given: float | None) -> None:
        """Set tunables (``retention``, ``max_finished_runs``, ``lease_ttl``, ``max_retained_bytes``)
        from what the store was given; those left out (``None``) take the default settings until
        :meth:`configure`."""
        self._untuned = tuple(name for name, value in given.items() if value is None)
        defaults = Settings()
        for name, value in given.items():
            setattr(self, name, getattr(defaults, _SETTING_OF[name]) if value is None else value)

    def configure(self, settings: Settings) -> None:
        """Take from the service's settings the tunables the store was not given itself (its
        retention, its bound on finished runs, its lease time); :class:`ACPService` calls it once."""
        for name in self._untuned:
            setattr(self, name, getattr(settings, _SETTING_OF[name]))

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections; called once, lazily, on the engine's event loop."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called when the engine stops."""

    async def ping(self) -> None:  # noqa: B027 - optional hook
        """Check, cheaply, that the store answers (``GET {mount}/health``); raise
        :class:`StoreUnavailable` when it does not. Nothing to check for a store of one process."""

    # runs -----------------------------------------------------------------------------------------
    @abstractmethod
    async def create_run(self, record: RunRecord, first_event: EventRecord) -> None:
        """Store a new run together with its first event (``run.created``)."""

    async def create_and_transition(
        self,
        record: RunRecord,
        first_event: EventRecord,
        changes: Mapping[str, Any],
        *,
        events: Sequence[EventRecord],
    ) -> bool:
        """Store a new run with its first event, and move it at once: :meth:`create_run`, then
        :meth:`transition` with ``changes`` and ``events`` from the status it was created in (the engine
        creates a run it executes at once already ``in-progress``; a short sync run, already ended or
        awaiting, with every event it wrote: see :mod:`~acp_adapters.core.run_writes`). Returns whether
        the move applied.

        The log starts with ``first_event`` then ``events``, as if the two steps were taken. This
        default takes them one after the other (a reader may see the run as created in between, and
        another party may move it first: the move then does not apply); the stores of this package
        store the run as moved, in one step.
        """
        run_id, status = record.run.run_id, record.run.status  # (a store may share the run object)
        await self.create_run(record, first_event)
        return await self.transition(run_id, changes, expect={status}, events=events) is not None

    @abstractmethod
    async def get_run(self, run_id: uuid.UUID) -> RunRecord | None:
        """The run's latest snapshot, or ``None`` if it does not exist (or has expired)."""

    async def write_run(
        self,
        run_id: uuid.UUID,
        changes: Mapping[str, Any],
        *,
        expect: Collection[RunStatus] | None = None,
        events: Sequence[EventRecord] = (),
    ) -> RunRecord | None:
        """The one write of a run, atomic: if the run exists and (with ``expect``) its status is one of
        them, set ``changes`` (``Run`` attribute names) and append ``events``, as one step.

        Returns the updated record, or ``None`` (nothing written) when the run is missing or its
        status did not match. No reader may see the new status without ``events``, nor ``events``
        out of order. Empty ``changes`` write no snapshot (a peek, or an append). The primitive of
        :meth:`update_run`, :meth:`transition` and :meth:`append_events`.
        """
        raise NotImplementedError  # Store.__new__ refuses a class that reaches this

    async def update_run(
        self,
        run_id: uuid.UUID,
        changes: Mapping[str, Any],
        *,
        expect: Collection[RunStatus] | None = None,
    ) -> RunRecord | None:
        """Set fields of the run's snapshot (``Run`` attribute names) atomically.

        With ``expect``, only if the run's status is one of them. Returns the updated record, or
        ``None`` when the run is missing or its status did not match.
        """
        return self._after_write(run_id, await self.write_run(run_id, changes, expect=expect), False)

    async def transition(
        self,
        run_id: uuid.UUID,
        changes: Mapping[str, Any],
        *,
        expect: Collection[RunStatus],
        events: Sequence[EventRecord],
    ) -> RunRecord | None:
        """:meth:`update_run`, and if it applied, append ``events`` — as one step, so that no reader
        sees the new status without the event that announces it."""
        record = await self.write_run(run_id, changes, expect=expect, events=events)
        return self._after_write(run_id, record, bool(events))

    def _after_write(self, run_id: uuid.UUID, record: RunRecord | None, appended: bool) -> RunRecord | None:
        """After a default write: wake this process's readers, drop the signals of a run that ended."""
        if record is not None:
            if appended:
                self._in_process.wake(run_id)
            if record.run.status.is_terminal:
                self._in_process.ended(run_id)
        return record

    # events ---------------------------------------------------------------------------------------
    async def append_events(self, run_id: uuid.UUID, events: Sequence[EventRecord]) -> None:
        """Append events to the run's log, in order, and wake the run's readers."""
        if events:
            self._after_write(run_id, await self.write_run(run_id, {}, events=events), True)

    async def append_and_update(
        self, run_id: uuid.UUID, events: Sequence[EventRecord], changes: Mapping[str, Any]
    ) -> None:
        """:meth:`append_events`, then :meth:`update_run` with ``changes`` and no status check (fields
        that no status depends on: the output, once a message is complete).

        A store that writes events behind (:mod:`.write_behind`) queues ``changes`` with them: they are
        written with the events' batch, or with the run's next write if that comes first (one round
        trip for both), whatever that write's status check decides. Readers may see the events before
        the changes, never the changes before the events.
        """
        await self.append_events(run_id, events)
        await self.update_run(run_id, changes)

    async def events_from(self, run_id: uuid.UUID, start: int) -> list[EventRecord]:
        """The run's events from index ``start`` on, as they are now (no waiting); ``[]`` for a run
        that does not exist. The primitive of :meth:`read_events` and :meth:`count_events`."""
        raise NotImplementedError  # Store.__new__ refuses a class that reaches this

    async def read_events(self, run_id: uuid.UUID, start: int, timeout: float = 0.0) -> list[EventRecord]:
        """The run's events from index ``start`` on.

        If there are none yet, wait up to ``timeout`` seconds for one; ``[]`` when none came. This
        default is woken by the appends of this instance and, for a shared store, looks again every
        ``poll_interval`` seconds (slow: a store with notifications overrides it).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            waiter = self._in_process.waiter(run_id)
            events = await self.events_from(run_id, start)
            remaining = deadline - loop.time()
            if events or remaining <= 0:
                self._in_process.leave(run_id, waiter)
                return events
            await self._in_process.wait(
                run_id, waiter, min(remaining, self.poll_interval) if self.shared else remaining
            )

    async def count_events(self, run_id: uuid.UUID) -> int:
        """How many events the run's log holds (the index the next event will get)."""
        return len(await self.read_events(run_id, 0))

    # signals --------------------------------------------------------------------------------------
    async def send_signal(self, run_id: uuid.UUID, signal: Signal) -> None:
        """Deliver a signal to whichever worker executes the run; dropped if the run is unknown or ended.

        This default delivers within this instance only: right for a store of one process (a shared
        store must implement its own).
        """
        record = await self.get_run(run_id)
        if record is not None and not record.run.status.is_terminal:
            self._in_process.queue(run_id).put_nowait(signal)

    async def receive_signal(self, run_id: uuid.UUID) -> Signal:
        """Wait for the next signal to the run (only its executing worker calls this), in the order
        they were sent, each once."""
        record = await self.get_run(run_id)
        if record is None or record.run.status.is_terminal:
            await asyncio.Event().wait()  # nothing will ever come
        return await self._in_process.queue(run_id).get()

    @property
    def _in_process(self) -> LocalWaits:
        """This instance's waiting readers and signal queues (the defaults' in-process state)."""
        local: LocalWaits | None = self.__dict__.get("_local_waits")
        if local is None:
            local = self.__dict__["_local_waits"] = LocalWaits()
        return local

    # sessions -------------------------------------------------------------------------------------
    @abstractmethod
    async def get_session(self, session_id: uuid.UUID) -> SessionRecord | None:
        """The session, or ``None`` if this server has not seen it."""

    async def write_session(self, record: SessionRecord, *, expect: SessionRecord | None) -> bool:
        """Store ``record`` if the session is as ``expect`` says (``None``: it does not exist), atomically
        (a compare-and-set): ``True`` if written, ``False`` (nothing written) if the session was
        otherwise. The primitive of :meth:`claim_session`, :meth:`put_session` and
        :meth:`extend_session`, which retry until their write applies."""
        raise NotImplementedError  # Store.__new__ refuses a class that reaches this

    async def claim_session(self, record: SessionRecord) -> SessionRecord:
        """Create the session as ``record`` unless it exists, atomically (one winner among racing
        processes); returns the session as stored: ``record``, or the one that was there (whose
        ``owner`` the engine then compares with the caller's)."""
        while True:
            known = await self.get_session(record.id)
            if known is not None:
                return known
            if await self.write_session(record, expect=None):
                return record

    async def put_session(self, record: SessionRecord) -> None:
        """Replace a session's history and state (its owner forwarded its descriptor).

        The engine calls it only after :meth:`claim_session` showed the session is the caller's.
        """
        while not await self.write_session(record, expect=await self.get_session(record.id)):
            pass

    async def extend_session(
        self,
        session_id: uuid.UUID,
        history: Sequence[str],
        *,
        state: str | None = None,
        owner: str | None = None,
    ) -> SessionRecord | None:
        """Append history URLs (and set the state URL, if given) atomically; create the session if new.

        If the session exists and belongs to another owner than ``owner`` (``None`` included), write
        nothing and return ``None``.
        """
        while True:
            known = await self.get_session(session_id)
            if known is None:
                extended = SessionRecord(id=session_id, history=list(history), state=state, owner=owner)
            elif known.owner != owner:
                return None
            else:
                new_state = known.state if state is None else state
                extended = SessionRecord(session_id, [*known.history, *history], new_state, known.owner)
            if await self.write_session(extended, expect=known):
                return extended

    # liveness (shared stores) -------------------------------------------------------------------
    async def renew_leases(self, run_ids: Collection[uuid.UUID], ttl: float) -> None:  # noqa: B027
        """Mark the runs this process executes as alive for ``ttl`` more seconds.

        The engine calls this every ``ttl / 3`` seconds when ``shared`` is true. A single-process
        store needs no leases: its runs end with the process.
        """

    async def hand_over(self, run_id: uuid.UUID, lease: float) -> None:
        """The run this process has just created executes in another process (a remote executor's
        worker, once it takes the run from a queue): hold its lease ``lease`` seconds, for nobody
        renews it while it waits, and stop treating it as executed here.

        This default renews the lease; a store that keeps track of the runs its process executes
        forgets the run too.
        """
        await self.renew_leases([run_id], lease)

    async def find_lost_runs(self) -> list[uuid.UUID]:
        """Runs that are not finished but whose lease has lapsed (their worker died).

        The engine marks each failed (``update_run`` with ``expect`` decides which worker does it).
        """
        return []

    # resources ------------------------------------------------------------------------------------
    @abstractmethod
    async def put_resource(self, resource_id: uuid.UUID, data: bytes, *, owner: str | None = None) -> None:
        """Keep a resource (a history message, a state blob) that this server serves."""

    @abstractmethod
    async def get_resource(self, resource_id: uuid.UUID) -> ResourceRecord | None:
        """The resource's bytes and owner, or ``None``."""

    # keys -----------------------------------------------------------------------------------------
    @abstractmethod
    async def claim_key(self, key: str, value: bytes, ttl: float) -> bytes | None:
        """Keep ``value`` under ``key`` for ``ttl`` seconds unless the key is already held, atomically.

        Returns ``None`` if this call stored it, else the value already held (the engine uses it for
        ``Idempotency-Key``: one run per key and owner).
        """
