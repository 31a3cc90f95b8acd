"""The database store's queries: plain synchronous ORM code, run in the store's worker threads.

Rules this module keeps:

* Every function takes the database alias and the current time, and touches only its arguments' rows.
* Races are settled by the database, never by a lock in this process: compare-and-set is a conditional
  ``UPDATE ... WHERE version = seen``, and numbering (events, history entries) bumps a counter on the
  parent row first, which also takes the row's write lock until the transaction ends.
* A write keeps the byte count of what it changes (``log_bytes``, ``snapshot_bytes``, ``size``) in the
  same statement, so that bounding the store by bytes costs no query of its own.
* Expiry is computed when reading, from the retention in force (``finished_at``/``updated_at`` plus
  retention), so that changing a retention setting applies to existing rows too.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from django.db import IntegrityError, connections, transaction
from django.db.models import ExpressionWrapper, F, Model, PositiveBigIntegerField, Q, QuerySet
from django.db.models.functions import Coalesce, Length

from acp_adapters.core.lifecycle import ENDED, NOT_ENDED
from acp_adapters.core.models import Run, RunStatus
from acp_adapters.core.store import EventRecord, ResourceRecord, RunRecord, SessionRecord, Signal

from . import models as db
from .listen import CHANNEL, notify_sql
from .listen import payload as notify_payload
from .watch import EVENTS, SIGNALS

__all__ = [
    "NOT_ENDED_VALUES",
    "Seen",
    "append_events",
    "claim_key",
    "claim_session",
    "count_events",
    "counters",
    "create_run",
    "delete_runs",
    "extend_session",
    "find_lost_runs",
    "get_resource",
    "get_run",
    "get_session",
    "key_id",
    "put_resource",
    "put_session",
    "read_events",
    "renew_leases",
    "send_signal",
    "take_signal",
    "trim_finished",
    "update_run",
    "watch",
    "write_run",
]

M = TypeVar("M", bound=Model)

#: The stored values of the statuses of a run not yet ended (``lifecycle.NOT_ENDED``).
NOT_ENDED_VALUES = sorted(status.value for status in NOT_ENDED)
#: SQLite allows 32,766 parameters per query (999 before 3.32): stay well below either.
_CHUNK = 500
#: Compare-and-set retries before giving up (only reached if other writers keep winning).
_CAS_ATTEMPTS = 100
_TRAILING_UUID = re.compile(
    r"([0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12})/?$"
)


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _size(text: str) -> int:
    """Bytes of ``text`` in UTF-8."""
    return len(text.encode())


def _log_bytes(events: Sequence[EventRecord]) -> int:
    return sum(len(event.data) for event in events)


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for index in range(0, len(items), _CHUNK):
        yield items[index : index + _CHUNK]


def _alive(now: datetime, retention: float) -> Q:
    """Runs not finished, or finished less than ``retention`` seconds ago."""
    return Q(finished_at__isnull=True) | Q(finished_at__gt=now - timedelta(seconds=retention))


# runs ---------------------------------------------------------------------------------------------
def create_run(
    using: str,
    record: RunRecord,
    events: Sequence[EventRecord],
    now: datetime,
    initial_lease: float,
    worker: str = "",
) -> Seen:
    """Insert the run and its first events (``run.created``, and those of a move made at once: ``record``
    is the run after it); ``worker`` holds its lease (the creating process)."""
    run = record.run
    snapshot = run.model_dump(mode="json")
    text = _json(snapshot)
    if connections[using].vendor == "postgresql":
        _create_run_postgres(using, record, text, events, now, initial_lease, worker)
        return Seen(snapshot, record.owner, 0)
    with transaction.atomic(using=using):
        db.Run.objects.using(using).create(
            id=run.run_id,
            agent_name=run.agent_name,
            session_id=run.session_id,
            status=run.status.value,
            owner=record.owner,
            snapshot=text,
            snapshot_bytes=_size(text),
            event_count=len(events),
            log_bytes=_log_bytes(events),
            # A worker that dies before its first renewal still leaves a run that can be found lost.
            lease_expires_at=now + timedelta(seconds=initial_lease),
            worker=worker,
            created_at=now,
            updated_at=now,
            finished_at=now if run.status in ENDED else None,
        )
        db.RunEvent.objects.using(using).bulk_create(
            db.RunEvent(run_id=run.run_id, seq=seq, type=event.type, data=event.data.decode(), created_at=now)
            for seq, event in enumerate(events)
        )
    return Seen(snapshot, record.owner, 0)


def _create_run_postgres(
    using: str,
    record: RunRecord,
    text: str,
    events: Sequence[EventRecord],
    now: datetime,
    initial_lease: float,
    worker: str,
) -> None:
    """:func:`create_run` in one statement, so one round trip and no explicit transaction."""
    run = record.run
    values = ", ".join(["(%s, %s::text, %s::text)"] * len(events))
    sql = (
        f"WITH created AS (INSERT INTO {db.Run._meta.db_table} (id, agent_name, session_id, status, owner, "
        "snapshot, snapshot_bytes, version, event_count, log_bytes, signal_count, watched, worker, "
        "lease_expires_at, created_at, updated_at, finished_at) "
        "VALUES (%s, %s, %s, %s, %s, %s::text, %s, 0, %s, %s, 0, false, %s, %s, %s, %s, %s) RETURNING id) "
        f"INSERT INTO {db.RunEvent._meta.db_table} (run_id, seq, type, data, created_at) "
        f"SELECT id, v.seq, v.type, v.data, %s FROM created, (VALUES {values}) AS v(seq, type, data)"
    )
    params: list[Any] = [
        run.run_id,
        run.agent_name,
        run.session_id,
        run.status.value,
        record.owner,
        text,
        _size(text),
        len(events),
        _log_bytes(events),
        worker,
        now + timedelta(seconds=initial_lease),
        now,
        now,
        now if run.status in ENDED else None,
        now,
    ]
    for seq, event in enumerate(events):
        params += [seq, event.type, event.data.decode()]
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)


def get_run(using: str, run_id: uuid.UUID, now: datetime, retention: float) -> RunRecord | None:
    row = (
        db.Run.objects.using(using)
        .filter(_alive(now, retention), pk=run_id)
        .values_list("snapshot", "owner")
        .first()
    )
    if row is None:
        return None
    return RunRecord(run=Run.model_validate_json(row[0]), owner=row[1])


class Seen(NamedTuple):
    """A run's row as this process last wrote it: compare-and-set can start from it, saving a read."""

    snapshot: dict[str, Any]
    owner: str | None
    version: int


#: What a write of a run that applied returns: the record, the row as written, the new event count.
Updated = tuple[RunRecord, Seen, int | None]


def update_run(
    using: str,
    run_id: uuid.UUID,
    changes: Mapping[str, Any],
    expect: Collection[RunStatus] | None,
    now: datetime,
    retention: float,
    seen: Seen | None = None,
    events: Sequence[EventRecord] = (),
    notify: bool = False,
) -> Updated | None:
    """Compare-and-set, and if it applied, append ``events`` in the same transaction.

    Returns the record, the row as written and the run's new event count (``None`` without events), or
    ``None`` (the run is missing, or its status is not expected). With ``seen``, the first attempt trusts
    it (the version check catches a stale one) when it expects a status that ``seen`` has; otherwise,
    and after a lost attempt, the row is read.
    """
    return write_run(using, run_id, (), changes, expect, now, retention, seen, events, notify)[0]


def write_run(
    using: str,
    run_id: uuid.UUID,
    queued: Sequence[EventRecord],
    changes: Mapping[str, Any],
    expect: Collection[RunStatus] | None,
    now: datetime,
    retention: float,
    seen: Seen | None = None,
    events: Sequence[EventRecord] = (),
    notify: bool = False,
    queued_changes: Mapping[str, Any] | None = None,
) -> tuple[Updated | None, int | None]:
    """Append ``queued`` and set ``queued_changes`` (events appended and changes made before, written
    whatever the compare-and-set decides), then :func:`update_run`; on PostgreSQL, one statement for all
    when the change is written (a second one sets ``queued_changes`` when it is refused).

    Returns what :func:`update_run` returns, and the event count once ``queued`` was appended (``None``
    if nothing was queued or the run does not exist).
    """
    if queued_changes:
        merged = {**queued_changes, **changes}
        outcome = write_run(using, run_id, queued, merged, expect, now, retention, seen, events, notify)
        if outcome[0] is None and expect is not None:  # refused: the queued changes are written alone
            write_run(using, run_id, (), queued_changes, None, now, retention, None, (), notify)
        return outcome
    expected = None if expect is None else {RunStatus(status).value for status in expect}
    runs = db.Run.objects.using(using)
    postgres = connections[using].vendor == "postgresql"
    pending = list(queued)
    queued_count: int | None = None

    def append_pending() -> None:
        nonlocal pending, queued_count
        if pending:
            queued_count = append_events(using, run_id, pending, now, notify)
            pending = []

    write = bool(changes or events)  # events are appended only with a status check that holds
    if seen is not None and (not write or (expected is not None and seen.snapshot["status"] not in expected)):
        seen = None  # a check, or a refusal, must look at the row itself
    if not write or not postgres:
        append_pending()
    for _ in range(_CAS_ATTEMPTS):
        if seen is None:
            # Read outside the transaction: in SQLite, a transaction that reads and then writes may be
            # refused at once; one that starts with its write waits its turn.
            row = (
                runs.filter(_alive(now, retention), pk=run_id)
                .values_list("snapshot", "owner", "version")
                .first()
            )
            if row is None:
                append_pending()
                return None, queued_count
            text, owner, version = row
            snapshot = json.loads(text)
            if expected is not None and snapshot["status"] not in expected:
                append_pending()
                return None, queued_count
        else:
            snapshot, owner, version = seen
            seen = None
        run = Run.model_validate({**snapshot, **changes})
        if not write:  # a check only: nothing to write
            return (RunRecord(run=run, owner=owner), Seen(snapshot, owner, version), None), queued_count
        written = run.model_dump(mode="json")
        text = _json(written)
        count = None
        if postgres:
            if pending:
                applied, count = _write_run_postgres(
                    using, run_id, pending, run, text, version, now, events, notify
                )
                pending = []
                # (the count once ``queued`` was appended: the change's events follow if it applied)
                queued_count = count - len(events) if applied and count is not None else count
            else:
                applied, count = _update_run_postgres(using, run_id, run, text, version, now, events, notify)
            if applied:
                updated = RunRecord(run=run, owner=owner), Seen(written, owner, version + 1), count
                return updated, queued_count
            continue
        with transaction.atomic(using=using):
            changed = runs.filter(pk=run_id, version=version).update(
                snapshot=text,
                snapshot_bytes=_size(text),
                status=run.status.value,
                session_id=run.session_id,
                version=version + 1,
                updated_at=now,
                finished_at=now if run.status in ENDED else None,
            )
            if changed and events:
                count = append_events(using, run_id, events, now, notify)
        if changed:
            return (RunRecord(run=run, owner=owner), Seen(written, owner, version + 1), count), queued_count
    raise RuntimeError(f"run {run_id}: compare-and-set lost {_CAS_ATTEMPTS} times in a row")


def _write_run_postgres(
    using: str,
    run_id: uuid.UUID,
    queued: Sequence[EventRecord],
    run: Run,
    text: str,
    version: int,
    now: datetime,
    events: Sequence[EventRecord],
    notify: bool,
) -> tuple[bool, int | None]:
    """:func:`_update_run_postgres` that also appends ``queued`` first, whether the compare-and-set
    applies or not: one statement. The run's row is locked first (``old``), so that the version
    compared and the counts numbered from are those the update changes. Returns whether the change
    applied and the run's event count (``None`` if the run does not exist)."""
    table = db.Run._meta.db_table
    same = "r.version = %(version)s"
    params: dict[str, Any] = {
        "id": run_id,
        "version": version,
        "queued": len(queued),
        "queued_bytes": _log_bytes(queued),
        "events": len(events),
        "events_bytes": _log_bytes(events),
        "text": text,
        "text_bytes": _size(text),
        "status": run.status.value,
        "session": run.session_id,
        "now": now,
        "finished": now if run.status in ENDED else None,
        "payload": str(run_id),
    }
    params["rows"] = _events_json([*queued, *events])
    announce = (
        f", CASE WHEN watched AND (%(queued)s > 0 OR (applied AND %(events)s > 0)) THEN "
        f"pg_notify('{CHANNEL}', %(payload)s || ' {EVENTS} ' || event_count) END"
        if notify
        else ""
    )
    sql = (
        f"WITH old AS (SELECT id, version, event_count FROM {table} WHERE id = %(id)s FOR UPDATE), "
        f"bumped AS (UPDATE {table} r SET "
        f"event_count = r.event_count + %(queued)s + CASE WHEN {same} THEN %(events)s ELSE 0 END, "
        f"log_bytes = r.log_bytes + %(queued_bytes)s + CASE WHEN {same} THEN %(events_bytes)s ELSE 0 END, "
        f"snapshot = CASE WHEN {same} THEN %(text)s::text ELSE r.snapshot END, "
        f"snapshot_bytes = CASE WHEN {same} THEN %(text_bytes)s ELSE r.snapshot_bytes END, "
        f"status = CASE WHEN {same} THEN %(status)s ELSE r.status END, "
        f"session_id = CASE WHEN {same} THEN %(session)s::uuid ELSE r.session_id END, "
        f"updated_at = CASE WHEN {same} THEN %(now)s ELSE r.updated_at END, "
        f"finished_at = CASE WHEN {same} THEN %(finished)s::timestamptz ELSE r.finished_at END, "
        f"version = CASE WHEN {same} THEN r.version + 1 ELSE r.version END "
        "FROM old WHERE r.id = old.id "
        "RETURNING old.version = %(version)s AS applied, old.event_count AS start, r.event_count, "
        "r.watched), "
        f"added AS (INSERT INTO {db.RunEvent._meta.db_table} (run_id, seq, type, data, created_at) "
        "SELECT %(id)s, bumped.start + v.o - 1, v.e->>0, v.e->>1, %(now)s "
        f"FROM bumped, {_EVENT_ROWS.format('%(rows)s')} "
        "WHERE bumped.applied OR v.o <= %(queued)s RETURNING 1) "
        f"SELECT applied, event_count{announce} FROM bumped"
    )
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False, None
    return bool(row[0]), int(row[1])


def _update_run_postgres(
    using: str,
    run_id: uuid.UUID,
    run: Run,
    text: str,
    version: int,
    now: datetime,
    events: Sequence[EventRecord],
    notify: bool,
) -> tuple[bool, int | None]:
    """The compare-and-set of :func:`update_run` and its events in one statement (one round trip,
    atomic as any single statement): whether it applied, and the run's new event count (``None``
    without events)."""
    table = db.Run._meta.db_table
    params: list[Any] = [text, _size(text), run.status.value, run.session_id, now]
    params.append(now if run.status in ENDED else None)
    params += [len(events), _log_bytes(events), run_id, version]
    update = (
        f"UPDATE {table} SET snapshot = %s::text, snapshot_bytes = %s, status = %s, session_id = %s, "
        "version = version + 1, updated_at = %s, finished_at = %s, "
        "event_count = event_count + %s, log_bytes = log_bytes + %s "
        "WHERE id = %s AND version = %s RETURNING event_count, watched"
    )
    if not events:
        sql = update
    else:
        values = ", ".join(["(%s, %s::text, %s::text)"] * len(events))
        sql = (
            f"WITH bumped AS ({update}), "
            f"added AS (INSERT INTO {db.RunEvent._meta.db_table} (run_id, seq, type, data, created_at) "
            "SELECT %s, bumped.event_count - %s + v.i, v.type, v.data, %s "
            f"FROM bumped, (VALUES {values}) AS v(i, type, data) RETURNING 1) "
            f"SELECT event_count{_announce(notify)} FROM bumped"
        )
        params += [run_id, len(events), now]
        for index, event in enumerate(events):
            params += [index, event.type, event.data.decode()]
        if notify:
            params.append(str(run_id))
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False, None
    return True, int(row[0]) if events else None


def trim_finished(using: str, keep: int) -> int:
    """Delete the oldest finished runs beyond the newest ``keep``; returns how many runs went."""
    finished = db.Run.objects.using(using).filter(finished_at__isnull=False)
    cutoff = finished.order_by("-finished_at").values_list("finished_at", flat=True)[keep : keep + 1]
    if not cutoff:
        return 0
    return delete_runs(using, finished.filter(finished_at__lte=cutoff[0]))


def delete_runs(using: str, runs: QuerySet[db.Run]) -> int:
    """Delete these runs with their events and signals, a batch at a time; returns how many."""
    deleted = 0
    while True:
        batch = list(runs.values_list("id", flat=True)[:_CHUNK])
        if not batch:
            return deleted
        db.RunEvent.objects.using(using).filter(run_id__in=batch).delete()
        db.RunSignal.objects.using(using).filter(run_id__in=batch).delete()
        db.Run.objects.using(using).filter(pk__in=batch).only("id").delete()
        deleted += len(batch)


# events -------------------------------------------------------------------------------------------
def append_events(
    using: str, run_id: uuid.UUID, events: Sequence[EventRecord], now: datetime, notify: bool = False
) -> int | None:
    """Append and return the run's new event count (``None`` if the run does not exist)."""
    if connections[using].vendor == "postgresql":
        return _append_events_postgres(using, run_id, events, now, notify)
    runs = db.Run.objects.using(using).filter(pk=run_id)
    with transaction.atomic(using=using):
        # The UPDATE comes first: it takes the row's write lock, so concurrent appends number in turn.
        if not runs.update(
            event_count=F("event_count") + len(events), log_bytes=F("log_bytes") + _log_bytes(events)
        ):
            return None
        count: int = runs.values_list("event_count", flat=True).get()
        first = count - len(events)
        db.RunEvent.objects.using(using).bulk_create(
            db.RunEvent(
                run_id=run_id, seq=first + index, type=event.type, data=event.data.decode(), created_at=now
            )
            for index, event in enumerate(events)
        )
        if notify:
            _notify(using, notify_payload(run_id, EVENTS, count))
    return count


def _append_events_postgres(
    using: str, run_id: uuid.UUID, events: Sequence[EventRecord], now: datetime, notify: bool
) -> int | None:
    """:func:`append_events` in one statement, so one round trip: bump the count (which locks the run's
    row), insert the rows numbered from it, notify; atomic as any single statement."""
    sql = (
        f"WITH bumped AS (UPDATE {db.Run._meta.db_table} SET event_count = event_count + %s, "
        "log_bytes = log_bytes + %s WHERE id = %s RETURNING event_count, watched), "
        f"added AS (INSERT INTO {db.RunEvent._meta.db_table} (run_id, seq, type, data, created_at) "
        "SELECT %s, bumped.event_count - %s + v.o - 1, v.e->>0, v.e->>1, %s "
        f"FROM bumped, {_EVENT_ROWS.format('%s')} RETURNING 1) "
        f"SELECT event_count{_announce(notify)} FROM bumped"
    )
    params: list[Any] = [
        len(events),
        _log_bytes(events),
        run_id,
        run_id,
        len(events),
        now,
        _events_json(events),
    ]
    if notify:
        params.append(str(run_id))
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else int(row[0])


#: A batch of events as rows ``v(e, o)``: ``e`` a JSON ``[type, data]`` pair, ``o`` its place from 1. The
#: batch is one parameter (:func:`_events_json`): the statement's text is the same for any batch size,
#: so psycopg parses it once (a ``VALUES`` list with three placeholders per event was parsed again for
#: every batch, the largest part of a long stream's worker CPU).
_EVENT_ROWS = "json_array_elements({}::json) WITH ORDINALITY AS v(e, o)"


def _events_json(events: Sequence[EventRecord]) -> str:
    """The parameter of :data:`_EVENT_ROWS`: the events as a JSON array of ``[type, data]`` pairs."""
    return _json([[event.type, event.data.decode()] for event in events])


def _announce(notify: bool) -> str:
    """The select-list item that notifies the run's new event count (parameter: the run id), only if a
    process other than the executing one waits for its events (``watched``)."""
    if not notify:
        return ""
    return f", CASE WHEN watched THEN pg_notify('{CHANNEL}', %s || ' {EVENTS} ' || event_count) END"


def watch(using: str, run_id: uuid.UUID) -> None:
    """Ask the run's writers to announce its events (NOTIFY) from now on: this process waits for them."""
    db.Run.objects.using(using).filter(pk=run_id, watched=False).update(watched=True)


def _notify(using: str, text: str) -> None:
    with connections[using].cursor() as cursor:
        cursor.execute(notify_sql, [text])


def read_events(
    using: str, run_id: uuid.UUID, start: int, now: datetime, retention: float
) -> list[EventRecord]:
    cutoff = now - timedelta(seconds=retention)
    rows = (
        db.RunEvent.objects.using(using)
        .filter(
            Q(run__finished_at__isnull=True) | Q(run__finished_at__gt=cutoff), run_id=run_id, seq__gte=start
        )
        .order_by("seq")
        .values_list("type", "data")
    )
    return [EventRecord(type, data.encode()) for type, data in rows]


def ping(using: str) -> None:
    """``SELECT 1``: the database answers."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def count_events(using: str, run_id: uuid.UUID) -> int:
    count = db.Run.objects.using(using).filter(pk=run_id).values_list("event_count", flat=True).first()
    return count or 0


def counters(using: str, run_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int]]:
    """Each existing run's ``(event_count, signal_count)``: what waiting readers compare."""
    found: dict[uuid.UUID, tuple[int, int]] = {}
    for chunk in _chunks(list(run_ids)):
        rows = (
            db.Run.objects.using(using).filter(pk__in=chunk).values_list("id", "event_count", "signal_count")
        )
        found.update((run_id, (events, signals)) for run_id, events, signals in rows)
    return found


# signals ------------------------------------------------------------------------------------------
def send_signal(
    using: str, run_id: uuid.UUID, signal: Signal, now: datetime, notify: bool = False
) -> int | None:
    """Queue the signal and return the run's new signal count (``None`` if the run does not exist)."""
    runs = db.Run.objects.using(using).filter(pk=run_id)
    with transaction.atomic(using=using):
        if not runs.update(signal_count=F("signal_count") + 1):
            return None
        db.RunSignal.objects.using(using).create(
            run_id=run_id, kind=signal.kind, payload=signal.payload, created_at=now
        )
        count: int = runs.values_list("signal_count", flat=True).get()
        if notify:
            _notify(using, notify_payload(run_id, SIGNALS, count))
    return count


def take_signal(using: str, run_id: uuid.UUID) -> tuple[Signal | None, int]:
    """Remove and return the run's oldest signal, with the signal count seen before looking."""
    # The count is read first: a signal sent after this read raises the count above it, so a waiter
    # that compares with it cannot miss one.
    seen = db.Run.objects.using(using).filter(pk=run_id).values_list("signal_count", flat=True).first() or 0
    signals = db.RunSignal.objects.using(using)
    for pk, kind, payload in (
        signals.filter(run_id=run_id).order_by("id").values_list("id", "kind", "payload")[:8]
    ):
        if signals.filter(pk=pk).delete()[0]:
            return Signal(kind=kind, payload=bytes(payload)), seen
    return None, seen


# liveness -----------------------------------------------------------------------------------------
def renew_leases(using: str, run_ids: Collection[uuid.UUID], ttl: float, now: datetime, worker: str) -> None:
    expiry = now + timedelta(seconds=ttl)
    for chunk in _chunks(list(run_ids)):
        runs = db.Run.objects.using(using).filter(pk__in=chunk, status__in=NOT_ENDED_VALUES)
        runs.update(lease_expires_at=expiry, worker=worker)


def find_lost_runs(using: str, now: datetime, limit: int = 1000) -> list[uuid.UUID]:
    rows = db.Run.objects.using(using).filter(status__in=NOT_ENDED_VALUES, lease_expires_at__lt=now)
    return list(rows.order_by("lease_expires_at").values_list("id", flat=True)[:limit])


# sessions -----------------------------------------------------------------------------------------
def _session(using: str, session_id: uuid.UUID, since: datetime) -> SessionRecord | None:
    row = (
        db.Session.objects.using(using)
        .filter(pk=session_id, updated_at__gt=since)
        .values_list("state", "owner")
        .first()
    )
    if row is None:
        return None
    entries = db.SessionHistoryEntry.objects.using(using).filter(session_id=session_id).order_by("position")
    return SessionRecord(
        id=session_id, history=list(entries.values_list("url", flat=True)), state=row[0], owner=row[1]
    )


def get_session(using: str, session_id: uuid.UUID, now: datetime, retention: float) -> SessionRecord | None:
    return _session(using, session_id, now - timedelta(seconds=retention))


def _session_size(history: Iterable[str], state: str | None) -> int:
    return sum(_size(url) for url in history) + (0 if state is None else _size(state))


def put_session(using: str, record: SessionRecord, now: datetime) -> None:
    values = {
        "state": record.state,
        "owner": record.owner,
        "history_length": len(record.history),
        "size": _session_size(record.history, record.state),
        "updated_at": now,
    }
    with transaction.atomic(using=using):
        _ensure(using, db.Session(id=record.id, history_length=0, created_at=now, updated_at=now))
        db.Session.objects.using(using).filter(pk=record.id).update(**values)
        db.SessionHistoryEntry.objects.using(using).filter(session_id=record.id).delete()
        _add_entries(using, record.id, 0, record.history)
        _touch_resources(using, record.history, now)


def claim_session(using: str, record: SessionRecord, now: datetime, retention: float) -> SessionRecord:
    """Create the session as ``record`` unless a live one exists (an expired one is replaced, as if new);
    returns the session as stored. Among racing claimers exactly one creates it."""
    since = now - timedelta(seconds=retention)
    sessions = db.Session.objects.using(using)
    values = {
        "state": record.state,
        "owner": record.owner,
        "history_length": len(record.history),
        "size": _session_size(record.history, record.state),
        "created_at": now,
        "updated_at": now,
    }
    for _ in range(_CAS_ATTEMPTS):
        with transaction.atomic(using=using):
            try:
                # A plain INSERT in a savepoint: a concurrent claimer's uncommitted row makes it wait, then
                # fail, so that only one of them goes on to write the history.
                with transaction.atomic(using=using):
                    sessions.create(id=record.id, **values)
                created = True
            except IntegrityError:
                # The UPDATE of an expired row waits for a concurrent one, which makes the row live again
                # (this one then matches nothing): one winner here too.
                created = bool(sessions.filter(pk=record.id, updated_at__lte=since).update(**values))
                if created:
                    db.SessionHistoryEntry.objects.using(using).filter(session_id=record.id).delete()
            if created:
                _add_entries(using, record.id, 0, record.history)
                _touch_resources(using, record.history, now)
                return SessionRecord(
                    id=record.id, history=list(record.history), state=record.state, owner=record.owner
                )
            stored = _session(using, record.id, since)
        if stored is not None:
            return stored
        # Deleted (purged) or expired between the two statements: claim again.
    raise RuntimeError(f"session {record.id}: could not be claimed in {_CAS_ATTEMPTS} attempts")


def extend_session(
    using: str,
    session_id: uuid.UUID,
    history: Sequence[str],
    state: str | None,
    owner: str | None,
    now: datetime,
    retention: float,
) -> SessionRecord | None:
    """Append history (and set the state) of the caller's session, creating it if new; ``None``, with
    nothing written, when the session is another owner's (``None`` being an owner like any other)."""
    since = now - timedelta(seconds=retention)
    sessions = db.Session.objects.using(using).filter(pk=session_id)
    added = sum(_size(url) for url in history)
    changes: dict[str, Any] = {
        "history_length": F("history_length") + len(history),
        "size": F("size") + added,
        "updated_at": now,
    }
    if state is not None:
        changes["state"] = state
        # SET expressions read the row as it was: the old state's length is taken off.
        changes["size"] = ExpressionWrapper(
            F("size") + (added + _size(state)) - Coalesce(Length("state"), 0),
            output_field=PositiveBigIntegerField(),
        )
    with transaction.atomic(using=using):
        # Every writer takes the session row first (insert if missing, then update), then its entries:
        # one order, so concurrent writers queue on the row instead of deadlocking.
        _ensure(
            using, db.Session(id=session_id, owner=owner, history_length=0, created_at=now, updated_at=now)
        )
        expired = {
            "state": None,
            "owner": owner,
            "history_length": 0,
            "size": 0,
            "created_at": now,
            "updated_at": now,
        }
        if sessions.filter(updated_at__lte=since).update(**expired):
            db.SessionHistoryEntry.objects.using(using).filter(session_id=session_id).delete()
        # ``owner=None`` matches a NULL owner only: an anonymous caller writes only to anonymous sessions.
        if not sessions.filter(owner=owner).update(**changes):
            return None  # another owner's: the insert above was ignored, and nothing else was written
        length: int = sessions.values_list("history_length", flat=True).get()
        _add_entries(using, session_id, length - len(history), history)
        _touch_resources(using, history, now)
        record = _session(using, session_id, since)
    assert record is not None
    return record


def _ensure(using: str, row: M) -> None:
    """Insert the row unless one with its key exists (waiting for a concurrent insert to commit)."""
    type(row)._default_manager.using(using).bulk_create([row], ignore_conflicts=True)


def _add_entries(using: str, session_id: uuid.UUID, first: int, urls: Sequence[str]) -> None:
    db.SessionHistoryEntry.objects.using(using).bulk_create(
        db.SessionHistoryEntry(session_id=session_id, position=first + index, url=url)
        for index, url in enumerate(urls)
    )


def _touch_resources(using: str, urls: Iterable[str], now: datetime) -> None:
    """Keep this server's resources alive as long as a session's history names them.

    History URLs of resources served here end with the resource id; any other URL matches no row.
    """
    ids = []
    for url in urls:
        match = _TRAILING_UUID.search(url)
        if match:
            ids.append(uuid.UUID(match.group(1)))
    for chunk in _chunks(ids):
        db.Resource.objects.using(using).filter(pk__in=chunk).update(touched_at=now)


# resources ----------------------------------------------------------------------------------------
def put_resource(using: str, resource_id: uuid.UUID, data: bytes, owner: str | None, now: datetime) -> None:
    db.Resource.objects.using(using).bulk_create(
        [db.Resource(id=resource_id, data=data, owner=owner, size=len(data), created_at=now, touched_at=now)],
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=["data", "owner", "size", "touched_at"],
    )


def get_resource(
    using: str, resource_id: uuid.UUID, now: datetime, retention: float
) -> ResourceRecord | None:
    since = now - timedelta(seconds=retention)
    row = (
        db.Resource.objects.using(using)
        .filter(pk=resource_id, touched_at__gt=since)
        .values_list("data", "owner")
        .first()
    )
    return None if row is None else ResourceRecord(bytes(row[0]), row[1])


# keys ---------------------------------------------------------------------------------------------
def key_id(key: str) -> str:
    """The row id of a key: its SHA-256 in hex (any key fits, and the index stays small)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def claim_key(using: str, key: str, value: bytes, ttl: float, now: datetime) -> bytes | None:
    """Hold ``key`` with ``value`` until ``now + ttl`` unless a live holder exists (an expired one is
    replaced); ``None`` if this call holds it now, else the value held."""
    keys = db.IdempotencyKey.objects.using(using)
    row_id, expires_at = key_id(key), now + timedelta(seconds=ttl)
    for _ in range(_CAS_ATTEMPTS):
        try:
            with transaction.atomic(using=using):
                keys.create(id=row_id, value=value, expires_at=expires_at)
            return None
        except IntegrityError:
            pass
        # A concurrent replacer's UPDATE makes the row live: this one then waits and matches nothing.
        if keys.filter(pk=row_id, expires_at__lte=now).update(value=value, expires_at=expires_at):
            return None
        held = keys.filter(pk=row_id).values_list("value", flat=True).first()
        if held is not None:
            return bytes(held)
        # Purged between the statements: try again.
    raise RuntimeError(f"idempotency key: could not be claimed in {_CAS_ATTEMPTS} attempts")
