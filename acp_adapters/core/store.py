"""The store interface: where runs, their events, sessions and resources live.

Rules this module keeps:

* A store holds data, never behaviour: the run engine decides, the store records and wakes.
* Events are appended, one record each, and read by index: nothing rewrites a run's whole log.
* Every status change that two parties may race on goes through :meth:`Store.update_run` with the
  statuses it expects, so that exactly one of them wins (on one process or on many).
* A shared backend (Redis, a database) implements the same methods; ``shared = True`` tells the
  engine that other processes read and signal the same runs.
* Owners are identities or ``None`` (anonymous), never ``""``: the service maps an empty owner to
  ``None`` before anything reaches a store. A record with an owner is that owner's only; the engine
  and the service compare owners, the store records them.
* What a store keeps is bounded by bytes (``max_retained_bytes``), not only by count and age.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, NamedTuple

from .models import Run, RunStatus
from .settings import Settings

__all__ = [
    "EventRecord",
    "ResourceRecord",
    "RunRecord",
    "SessionRecord",
    "Signal",
    "Store",
    "StoreUnavailable",
]


class StoreUnavailable(Exception):
    """The store's backend cannot be reached; the HTTP layer answers 503 with an ACP error."""


class EventRecord(NamedTuple):
    """One event of a run's log: its type and its JSON, serialised once when it was emitted."""

    type: str
    data: bytes


@dataclass
class RunRecord:
    """A run's snapshot and who owns it (the identity the host's auth gave, or ``None``)."""

    run: Run
    owner: str | None = None


@dataclass
class SessionRecord:
    """A session as this server knows it: history and state as resource URLs."""

    id: uuid.UUID
    history: list[str] = field(default_factory=list)
    state: str | None = None
    owner: str | None = None


class ResourceRecord(NamedTuple):
    """A resource's bytes and who owns it (``None``: anyone who knows its URL may read it)."""

    data: bytes
    owner: str | None = None


@dataclass(frozen=True)
class Signal:
    """A message to the worker executing a run: cancel it, or resume it with a JSON payload."""

    kind: Literal["cancel", "resume"]
    payload: bytes = b""


#: The field of :class:`Settings` each store tunable follows.
_SETTING_OF = {
    "retention": "run_retention",
    "max_finished_runs": "max_finished_runs",
    "lease_ttl": "lease_ttl",
    "max_retained_bytes": "max_retained_bytes",
}


class Store(ABC):
    """Where the engine keeps runs, events, sessions and resources. All methods are coroutines."""

    #: True when other processes share this store (the engine then listens for their signals).
    shared: ClassVar[bool] = False

    #: The tunables this store was not given, which :meth:`configure` takes from the service.
    _untuned: tuple[str, ...] = ()

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

    # runs -----------------------------------------------------------------------------------------
    @abstractmethod
    async def create_run(self, record: RunRecord, first_event: EventRecord) -> None:
        """Store a new run together with its first event (``run.created``)."""

    @abstractmethod
    async def get_run(self, run_id: uuid.UUID) -> RunRecord | None:
        """The run's latest snapshot, or ``None`` if it does not exist (or has expired)."""

    @abstractmethod
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

    async def transition(
        self,
        run_id: uuid.UUID,
        changes: Mapping[str, Any],
        *,
        expect: Collection[RunStatus],
        events: Sequence[EventRecord],
    ) -> RunRecord | None:
        """:meth:`update_run`, and if it applied, append ``events`` — as one step, so that no reader
        sees the new status without the event that announces it.

        This default is two steps: one step for a store whose methods do not suspend between them
        (the in-memory store); a shared store overrides it with one atomic operation.
        """
        record = await self.update_run(run_id, changes, expect=expect)
        if record is not None and events:
            await self.append_events(run_id, events)
        return record

    # events ---------------------------------------------------------------------------------------
    @abstractmethod
    async def append_events(self, run_id: uuid.UUID, events: Sequence[EventRecord]) -> None:
        """Append events to the run's log, in order, and wake the run's readers."""

    @abstractmethod
    async def read_events(self, run_id: uuid.UUID, start: int, timeout: float = 0.0) -> list[EventRecord]:
        """The run's events from index ``start`` on.

        If there are none yet, wait up to ``timeout`` seconds for one; ``[]`` when none came.
        """

    async def count_events(self, run_id: uuid.UUID) -> int:
        """How many events the run's log holds (the index the next event will get)."""
        return len(await self.read_events(run_id, 0))

    # signals --------------------------------------------------------------------------------------
    @abstractmethod
    async def send_signal(self, run_id: uuid.UUID, signal: Signal) -> None:
        """Deliver a signal to whichever worker executes the run."""

    @abstractmethod
    async def receive_signal(self, run_id: uuid.UUID) -> Signal:
        """Wait for the next signal to the run (only its executing worker calls this)."""

    # sessions -------------------------------------------------------------------------------------
    @abstractmethod
    async def get_session(self, session_id: uuid.UUID) -> SessionRecord | None:
        """The session, or ``None`` if this server has not seen it."""

    @abstractmethod
    async def claim_session(self, record: SessionRecord) -> SessionRecord:
        """Create the session as ``record`` unless it exists, atomically (one winner among racing
        processes); returns the session as stored: ``record``, or the one that was there (whose
        ``owner`` the engine then compares with the caller's)."""

    @abstractmethod
    async def put_session(self, record: SessionRecord) -> None:
        """Replace a session's history and state (its owner forwarded its descriptor).

        The engine calls it only after :meth:`claim_session` showed the session is the caller's.
        """

    @abstractmethod
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

    # liveness (shared stores) -------------------------------------------------------------------
    async def renew_leases(self, run_ids: Collection[uuid.UUID], ttl: float) -> None:  # noqa: B027
        """Mark the runs this process executes as alive for ``ttl`` more seconds.

        The engine calls this every ``ttl / 3`` seconds when ``shared`` is true. A single-process
        store needs no leases: its runs end with the process.
        """

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
