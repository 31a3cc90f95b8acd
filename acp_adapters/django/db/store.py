"""DjangoStore: runs, events, signals, sessions and resources in the Django project's own database.

Rules this module keeps:

* The engine's event loop never blocks: every query runs in the store's own thread pool (each thread
  holds its own Django connection), and waiting for an event or a signal holds no thread at all
  (:mod:`acp_adapters.django.db.watch`).
* Every database failure leaves as :class:`~acp_adapters.core.store.StoreUnavailable` (the API answers
  503) within ``timeout`` seconds, and the connection that failed is dropped, so the next call
  reconnects: the store recovers by itself when the database is back.
* The queries are in :mod:`acp_adapters.django.db.ops`; this module only schedules them and wakes waiters.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import importlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import anyio
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, DatabaseError, IntegrityError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from acp_adapters.core.lifecycle import ENDED
from acp_adapters.core.models import RunStatus
from acp_adapters.core.own_logs import OwnLogs
from acp_adapters.core.process import current_pid, worker_name
from acp_adapters.core.store import (
    EventRecord,
    ResourceRecord,
    RunRecord,
    SessionRecord,
    Signal,
    StoreUnavailable,
)
from acp_adapters.core.write_behind import BatchedEventsStore, EventBatcher

from .listen import PostgresListener
from .watch import EVENTS, SIGNALS, ChangeWatcher, Counters

if TYPE_CHECKING:
    from . import ops as db_ops
    from . import purge as db_purge
else:
    # The queries import the models, which need Django's app registry: importing this module (to name
    # the store in the settings) must not.
    db_ops = SimpleLazyObject(lambda: importlib.import_module("acp_adapters.django.db.ops"))
    db_purge = SimpleLazyObject(lambda: importlib.import_module("acp_adapters.django.db.purge"))

__all__ = ["DATABASE_APP", "DATABASE_APP_MISSING", "DjangoStore"]

#: The app that holds the store's tables; a project adds it to ``INSTALLED_APPS`` to use the store.
DATABASE_APP = "acp_adapters.django.db"
DATABASE_APP_MISSING = (
    f"The database store needs its app: add {DATABASE_APP!r} to INSTALLED_APPS (after "
    "'acp_adapters.django'), then run manage.py migrate."
)

logger = logging.getLogger("acp_adapters.django.store")

T = TypeVar("T")
P = ParamSpec("P")


class DjangoStore(BatchedEventsStore):
    """A :class:`~acp_adapters.core.store.Store` kept in a Django database (``acp_adapters`` tables).

    Add ``"acp_adapters.django"`` to ``INSTALLED_APPS`` and run ``manage.py migrate``. Several processes
    (gunicorn workers, machines) sharing the database share the runs: a request served by any of them
    can read, stream, cancel or resume a run executed by another.

    :param using: the database alias.
    :param retention: seconds a finished run (and its events) stays readable.
    :param max_finished_runs: how many finished runs are kept at most (the oldest go first; checked
        every ``max_finished_runs // 10`` runs this process finishes, and by ``acp_purge``).
    :param max_retained_bytes: bytes of finished runs (their events and snapshots), sessions and
        resources kept together at most: past it the oldest finished runs go first, then the least
        recently used sessions and resources (:mod:`.purge`). Checked each time this process has
        written a tenth of it, and by ``acp_purge``; runs still going are never deleted.
    :param session_retention: seconds a session (and the resources its history names) stays after its
        last change; ``retention`` if not given.
    :param lease_ttl: seconds a new run counts as alive before its worker first renews its lease.
    :param poll_interval: how often a process polls for other processes' events and signals while it
        has waiters and they change; it backs off to ``max_poll_interval`` while nothing changes.
    :param threads: threads (and so database connections) of this process's store.
    :param timeout: seconds after which a query that has not answered counts as a database outage.
    :param listen: announce appends and signals with PostgreSQL's LISTEN/NOTIFY (one more connection per
        process), the poll slowing to a safety net; ``None``: on PostgreSQL only.
    :param write_behind: return from ``append_events`` at once and write a run's events in batches, one
        transaction for all that came while the previous one was written (``core.write_behind``):
        streams go about 30 times faster. Another process sees an event once its batch is
        written (a few ms later; this process at once; everyone before the run's next status change).
        ``False``: each append returns once committed.

    Like every store, the tunables left out (``retention``, ``max_finished_runs``, ``lease_ttl``,
    ``max_retained_bytes``) follow the service's settings (:meth:`configure`): a mount's, which are
    ``ACP_ADAPTERS["SETTINGS"]`` for the default one, so that
    ``ACP_ADAPTERS["STORE"] = "acp_adapters.django.db.store.DjangoStore"`` needs nothing else. The
    store reads no Django setting itself; until configured, it has the defaults of
    :class:`~acp_adapters.core.settings.Settings`.
    """

    shared = True
    writes_queued_with_change = True

    def __init__(
        self,
        using: str = DEFAULT_DB_ALIAS,
        *,
        retention: float | None = None,
        max_finished_runs: int | None = None,
        max_retained_bytes: int | None = None,
        session_retention: float | None = None,
        lease_ttl: float | None = None,
        poll_interval: float = 0.05,
        max_poll_interval: float = 0.25,
        threads: int = 8,
        timeout: float = 10.0,
        listen: bool | None = None,
        write_behind: bool = True,
    ) -> None:
        if apps.ready and not apps.is_installed(DATABASE_APP):
            raise ImproperlyConfigured(DATABASE_APP_MISSING)
        self.using = using
        super().__init__(
            retention=retention,
            max_finished_runs=max_finished_runs,
            max_retained_bytes=max_retained_bytes,
            lease_ttl=lease_ttl,
        )
        self._session_retention = session_retention
        self.threads = threads
        self.timeout = timeout
        self.watcher = ChangeWatcher(self._counters, interval=poll_interval, max_interval=max_poll_interval)
        self._executor: ThreadPoolExecutor | None = None
        self._pid = 0
        # The connections the store's threads opened, closed by ``close`` (a database in use by an idle
        # connection cannot be dropped, as a test database must be).
        self._connections: set[BaseDatabaseWrapper] = set()
        self._finished_since_trim = 0
        self._bytes_since_trim = 0
        # What this process last wrote of the runs it changes (compare-and-set starts from it).
        self._seen: OrderedDict[uuid.UUID, db_ops.Seen] = OrderedDict()
        self._listen = listen
        #: Runs this process created (and so executes), with when and for how long their first lease was
        #: written; the 10,000 latest.
        self._fresh: OrderedDict[uuid.UUID, tuple[Any, float]] = OrderedDict()
        #: Runs whose events this process waits for and that it asked to be announced (``watched``).
        self._watching: OrderedDict[uuid.UUID, None] = OrderedDict()
        #: Runs created here whose first look for signals is still to come (nobody knew of them yet).
        self._no_signal_yet: set[uuid.UUID] = set()
        #: The written events of the runs created here, for their readers here (the creating request's
        #: stream): not read back from the database.
        self._logs = OwnLogs(limit=10_000)
        self.batcher = EventBatcher(self._flush, write_behind=write_behind, logger=logger)
        self._listener: PostgresListener | None = None
        #: Set when the listener is connected (what ``start`` waits for).
        self._connected = asyncio.Event()

    @property
    def write_behind(self) -> bool:
        """Whether appends return at once and are written in batches (the ``write_behind`` parameter)."""
        return self.batcher.write_behind

    @write_behind.setter
    def write_behind(self, value: bool) -> None:
        self.batcher.write_behind = value

    @property
    def session_retention(self) -> float:
        """Seconds a session (and the resources its history names) stays after its last change."""
        return self.retention if self._session_retention is None else self._session_retention

    @session_retention.setter
    def session_retention(self, value: float | None) -> None:
        self._session_retention = value

    async def start(self) -> None:
        # No cold worker: what the first run would make lazily is made now: a store thread and its
        # connection (and the queries' module, which imports the models), and on PostgreSQL the
        # listening connection. (One thread: the others open theirs as concurrent queries need them,
        # so that a worker holds no more connections than its load asks for.) A database that is down
        # is only logged: each query answers for itself.
        try:
            await self.ping()
        except StoreUnavailable as exc:
            logger.warning("database store: %s; retrying on each use", exc)
            return
        if self.listens and not self.watcher.notified:
            self._connected = asyncio.Event()
            self._ensure_listening()
            with anyio.move_on_after(self.timeout):
                await self._connected.wait()

    async def close(self) -> None:
        await self.batcher.close()
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        await self.watcher.close()
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        opened, self._connections = self._connections, set()
        if opened:
            await asyncio.get_running_loop().run_in_executor(None, _close_connections, opened)

    async def ping(self) -> None:
        await self._read_query(db_ops.ping)

    # runs -----------------------------------------------------------------------------------------
    async def create_run(self, record: RunRecord, first_event: EventRecord) -> None:
        await self._create_run(record, [first_event])

    async def create_and_transition(
        self,
        record: RunRecord,
        first_event: EventRecord,
        changes: Mapping[str, Any],
        *,
        events: Sequence[EventRecord],
    ) -> bool:
        # One statement: the run is stored as moved, its log starts with both events.
        moved = RunRecord(record.run.model_copy(update=changes), record.owner)
        await self._create_run(moved, [first_event, *events])
        return True

    async def _create_run(self, record: RunRecord, events: Sequence[EventRecord]) -> None:
        now = self._now()
        run_id = record.run.run_id
        seen = await self._query(db_ops.create_run, record, events, now, self.lease_ttl, self.worker)
        if record.run.status in ENDED:  # a short run written once, at its end: nothing to keep of it
            self._bytes_since_trim += sum(len(event.data) for event in events)
            await self._finished()
            return
        self._remember(run_id, seen)
        # The lease just written is this process's: the engine's renewal right after creating the run
        # (and the first look for signals, none yet) need no query.
        self._fresh[run_id] = (now, self.lease_ttl)
        self._no_signal_yet.add(run_id)
        self._logs.start(run_id, events)
        if len(self._fresh) > 10_000:
            self._fresh.popitem(last=False)
        self._bytes_since_trim += sum(len(event.data) for event in events)

    async def get_run(self, run_id: uuid.UUID) -> RunRecord | None:
        return await self._read_query(db_ops.get_run, run_id, self._now(), self.retention)

    async def _change_run_with(
        self,
        run_id: uuid.UUID,
        queued: list[EventRecord],
        changes: Mapping[str, Any],
        expect: Collection[RunStatus] | None,
        events: Sequence[EventRecord],
        queued_changes: Mapping[str, Any] | None = None,
    ) -> RunRecord | None:
        # One transaction: nobody, in any process, sees the new status without its event. The events
        # and changes still queued for the run (``queued``, ``queued_changes``) go first in the same
        # statement, whatever the compare-and-set decides: no flush of their own.
        seen = self._seen.get(run_id)
        result, queued_count = await self._query(
            db_ops.write_run,
            run_id,
            queued,
            changes,
            expect,
            self._now(),
            self.retention,
            seen,
            events,
            self.listens,
            queued_changes or {},
        )
        if queued:
            self._bytes_since_trim += sum(len(event.data) for event in queued)
            self._events_written(run_id, queued, queued_count)
        if result is None:
            self._seen.pop(run_id, None)
            return None
        record, written, count = result
        if count is not None:
            self._events_written(run_id, events, count)
        self._bytes_since_trim += sum(len(event.data) for event in events)
        if record.run.status in ENDED:
            self._seen.pop(run_id, None)
            self._no_signal_yet.discard(run_id)
            self._logs.forget(run_id)
            if "status" in changes:
                await self._finished()
        else:
            self._remember(run_id, written)
        return record

    def _remember(self, run_id: uuid.UUID, seen: db_ops.Seen) -> None:
        self._seen[run_id] = seen
        self._seen.move_to_end(run_id)
        if len(self._seen) > 10_000:
            self._seen.popitem(last=False)

    async def _finished(self) -> None:
        """A run has ended in this process: it counts towards the next trim."""
        self._finished_since_trim += 1
        await self._trim_if_due()

    async def _trim_if_due(self) -> None:
        """:meth:`trim` once this process has finished a tenth of ``max_finished_runs`` runs or written a
        tenth of ``max_retained_bytes`` since the last one: no query of its own otherwise."""
        if self._finished_since_trim >= max(1, self.max_finished_runs // 10) or (
            self._bytes_since_trim >= max(1, self.max_retained_bytes // 10)
        ):
            try:
                await self.trim()
            except (
                StoreUnavailable
            ) as exc:  # what was written stands; the next trim (or acp_purge) catches up
                logger.warning("could not trim the database store: %s", exc)

    async def trim(self) -> db_purge.Purged:
        """Delete the oldest finished runs past ``max_finished_runs``, then what is over
        ``max_retained_bytes`` (oldest finished runs first), and the expired idempotency keys."""
        self._finished_since_trim = self._bytes_since_trim = 0
        return await self._query(
            db_purge.trim,
            self._now(),
            max_finished_runs=self.max_finished_runs,
            max_retained_bytes=self.max_retained_bytes,
        )

    # events ---------------------------------------------------------------------------------------
    # Appends go through ``batcher`` (BatchedEventsStore), which calls this with each batch.
    async def _append_events(self, run_id: uuid.UUID, events: list[EventRecord]) -> None:
        count = await self._query(db_ops.append_events, run_id, events, self._now(), self.listens)
        self._bytes_since_trim += sum(len(event.data) for event in events)
        self._events_written(run_id, events, count)

    def _events_written(self, run_id: uuid.UUID, events: Sequence[EventRecord], count: int | None) -> None:
        """``events`` were written here, the run's event count now ``count``: the run's log (read by the
        readers here), then the readers woken."""
        self._logs.written(run_id, events, count)
        self.watcher.changed(run_id, EVENTS, count)

    async def read_events(
        self,
        run_id: uuid.UUID,
        start: int,
        timeout: float = 0.0,  # noqa: ASYNC109 - the Store interface's
    ) -> list[EventRecord]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # A follower (it waits) of a run created here reads what was written here, not back from the
        # database; a one-shot read (the events list) reads the database, which has every event.
        log = self._logs.get(run_id) if timeout > 0 else None
        if log is not None:
            if len(log) > start:
                return log[start:]
            if await self.watcher.wait(run_id, EVENTS, start, timeout) and len(log) > start:
                return log[start:]
            # The log stopped (another process wrote to the run; it ended) or nothing came: the database.
            timeout = max(0.0, deadline - loop.time())
        while True:
            events = await self._read(run_id, start)
            remaining = deadline - loop.time()
            if events or remaining <= 0:
                return events
            if await self._watch(run_id):
                # Announced from now on; what was appended before the mark is read here.
                events = await self._read(run_id, start)
                if events:
                    return events
            self._ensure_listening()
            if not await self.watcher.wait(run_id, EVENTS, start, remaining):
                return []
            # Woken: the count rose above ``start`` (read again) or the run is gone (the read is empty;
            # a run that does not exist has nothing to wait for).
            events = await self._read(run_id, start)
            if events or not await self._exists(run_id):
                return events

    async def _watch(self, run_id: uuid.UUID) -> bool:
        """Mark the run ``watched`` (its appends then NOTIFY) unless this process created it (it then
        executes it: its own appends wake its readers) or marked it already; whether it marked it now."""
        if not self.listens or run_id in self._fresh or run_id in self._watching:
            return False
        await self._query(db_ops.watch, run_id)
        self._watching[run_id] = None
        if len(self._watching) > 10_000:
            self._watching.popitem(last=False)
        return True

    async def _read(self, run_id: uuid.UUID, start: int) -> list[EventRecord]:
        return await self._read_query(db_ops.read_events, run_id, start, self._now(), self.retention)

    async def _count_events(self, run_id: uuid.UUID) -> int:
        return await self._read_query(db_ops.count_events, run_id)

    # signals --------------------------------------------------------------------------------------
    async def send_signal(self, run_id: uuid.UUID, signal: Signal) -> None:
        count = await self._query(db_ops.send_signal, run_id, signal, self._now(), self.listens)
        if count is not None:
            self.watcher.changed(run_id, SIGNALS, count)

    async def receive_signal(self, run_id: uuid.UUID) -> Signal:
        if run_id in self._no_signal_yet:
            # Created here a moment ago with no signal: wait for the count to rise above 0 (the poll, or
            # a notification, sees a signal sent since), without reading the table first.
            self._no_signal_yet.discard(run_id)
            self._ensure_listening()
            await self.watcher.wait(run_id, SIGNALS, 0, None)
        while True:
            signal, seen = await self._query(db_ops.take_signal, run_id)
            if signal is not None:
                return signal
            self._ensure_listening()
            await self.watcher.wait(run_id, SIGNALS, seen, None)

    # sessions -------------------------------------------------------------------------------------
    async def get_session(self, session_id: uuid.UUID) -> SessionRecord | None:
        return await self._read_query(db_ops.get_session, session_id, self._now(), self.session_retention)

    async def claim_session(self, record: SessionRecord) -> SessionRecord:
        stored = await self._query(db_ops.claim_session, record, self._now(), self.session_retention)
        await self._wrote(_urls_size(record.history, record.state))
        return stored

    async def put_session(self, record: SessionRecord) -> None:
        await self._query(db_ops.put_session, record, self._now())
        await self._wrote(_urls_size(record.history, record.state))

    async def extend_session(
        self,
        session_id: uuid.UUID,
        history: Sequence[str],
        *,
        state: str | None = None,
        owner: str | None = None,
    ) -> SessionRecord | None:
        record = await self._query(
            db_ops.extend_session, session_id, history, state, owner, self._now(), self.session_retention
        )
        if record is not None:
            await self._wrote(_urls_size(history, state))
        return record

    # liveness -------------------------------------------------------------------------------------
    async def renew_leases(self, run_ids: Collection[uuid.UUID], ttl: float) -> None:
        now = self._now()
        stale = [run_id for run_id in run_ids if not self._lease_is_fresh(run_id, ttl, now)]
        if stale:
            await self._query(db_ops.renew_leases, stale, ttl, now, self.worker)

    async def hand_over(self, run_id: uuid.UUID, lease: float) -> None:
        # Another process executes it: this one waits for its events as for any other's (watched),
        # and never looks for its signals.
        self._fresh.pop(run_id, None)
        self._no_signal_yet.discard(run_id)
        self._logs.forget(run_id)
        await self._query(db_ops.renew_leases, [run_id], lease, self._now(), self.worker)

    def _lease_is_fresh(self, run_id: uuid.UUID, ttl: float, now: Any) -> bool:
        """Whether this process wrote the run's lease at creation, for ``ttl``, less than a tenth of it ago
        (the renewal would change almost nothing)."""
        fresh = self._fresh.get(run_id)
        if fresh is None:
            return False
        written, lease = fresh
        return bool(lease >= ttl and (now - written).total_seconds() < ttl / 10)

    @property
    def worker(self) -> str:
        """This process, as the ``worker`` column names the one that holds a run's lease."""
        return worker_name()

    async def find_lost_runs(self) -> list[uuid.UUID]:
        return await self._read_query(db_ops.find_lost_runs, self._now())

    # resources ------------------------------------------------------------------------------------
    async def put_resource(self, resource_id: uuid.UUID, data: bytes, *, owner: str | None = None) -> None:
        await self._query(db_ops.put_resource, resource_id, data, owner, self._now())
        await self._wrote(len(data))

    async def get_resource(self, resource_id: uuid.UUID) -> ResourceRecord | None:
        return await self._read_query(db_ops.get_resource, resource_id, self._now(), self.session_retention)

    async def _wrote(self, size: int) -> None:
        self._bytes_since_trim += size
        await self._trim_if_due()

    # keys -----------------------------------------------------------------------------------------
    async def claim_key(self, key: str, value: bytes, ttl: float) -> bytes | None:
        return await self._query(db_ops.claim_key, key, value, ttl, self._now())

    # notifications --------------------------------------------------------------------------------
    @property
    def listens(self) -> bool:
        """Whether changes are announced with PostgreSQL's NOTIFY (``listen``; by default on PostgreSQL)."""
        if self._listen is None:
            self._listen = connections[self.using].vendor == "postgresql"
            if self._listen:
                _require_psycopg()
        return self._listen

    def _ensure_listening(self) -> None:
        if not self.listens:
            return
        if self._listener is None:
            params = connections[self.using].get_connection_params()
            self._listener = PostgresListener(params, self._notified, self._listening)
        self._listener.ensure_started()

    def _notified(self, run_id: uuid.UUID, kind: int, count: int) -> None:
        self.watcher.changed(run_id, kind, count)

    def _listening(self, connected: bool) -> None:
        self.watcher.notified = connected
        if connected:
            self._connected.set()

    # plumbing -------------------------------------------------------------------------------------
    async def _counters(self, run_ids: Collection[uuid.UUID]) -> Counters:
        return await self._read_query(db_ops.counters, run_ids)

    async def _exists(self, run_id: uuid.UUID) -> bool:
        return run_id in await self._counters([run_id])

    @staticmethod
    def _now() -> Any:
        return timezone.now()

    async def _query(self, query: Callable[Concatenate[str, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``query(self.using, ...)`` in a store thread."""
        return await self._in_thread(functools.partial(query, self.using, *args, **kwargs), retry=False)

    async def _read_query(
        self, query: Callable[Concatenate[str, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """:meth:`_query` for a query that only reads: tried again once on a new connection."""
        return await self._in_thread(functools.partial(query, self.using, *args, **kwargs), retry=True)

    async def _in_thread(self, query: Callable[[], T], retry: bool) -> T:
        # The executor straight (asgiref's sync_to_async costs about 100 us more per call, and the
        # store's threads need none of what it adds: they hold their own connections).
        call = functools.partial(contextvars.copy_context().run, self._run_query, query, retry)
        running = asyncio.get_running_loop().run_in_executor(self._pool(), call)
        # anyio's deadline, not asyncio.wait_for: on Python 3.10 and 3.11 that returns the result of a
        # query that completes as its task is cancelled, and swallows the cancellation (the engine's
        # lease keeper then never stopped, and its close waited for it forever).
        try:
            with anyio.fail_after(self.timeout):
                return await running
        except TimeoutError:
            raise StoreUnavailable(f"the database did not answer within {self.timeout:g}s") from None

    def _run_query(self, query: Callable[[], T], retry: bool) -> T:
        self._connections.add(connections[self.using])
        for attempt in (1, 2):
            try:
                return query()
            except IntegrityError:
                raise
            except DatabaseError as exc:
                # Drop the connection: it may be dead (a restarted server) and the next query reconnects.
                with contextlib.suppress(Exception):
                    connections[self.using].close()
                if retry and attempt == 1:
                    continue
                raise StoreUnavailable(f"the database is unreachable: {exc}".strip()) from exc
        raise AssertionError("unreachable")

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None or self._pid != current_pid():
            if self._pid and self._pid != current_pid():
                # Forked (gunicorn --preload): the parent's threads, connections and tasks are not ours.
                self._connections = set()
                self._listener = None
                self.watcher = ChangeWatcher(
                    self._counters, interval=self.watcher.interval, max_interval=self.watcher.max_interval
                )
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="acp-django-store")
            self._pid = current_pid()
        return self._executor


def _require_psycopg() -> None:
    """LISTEN/NOTIFY needs psycopg 3 (Django may run on psycopg2): say how to get it, or to poll."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"the database store listens on PostgreSQL with psycopg 3 ({exc}): "
            'pip install "acp-adapters[postgres]", or DjangoStore(listen=False) to poll only'
        ) from exc


def _urls_size(history: Sequence[str], state: str | None) -> int:
    return sum(len(url) for url in history) + len(state or "")


def _close_connections(opened: set[BaseDatabaseWrapper]) -> None:
    for connection in opened:
        with contextlib.suppress(Exception):
            connection.inc_thread_sharing()  # it belongs to a store thread: allow closing it from here
            connection.close()
