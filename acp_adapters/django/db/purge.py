"""Deleting what the database store no longer serves or can no longer afford.

* :func:`purge`: expired runs, sessions, resources and idempotency keys (the API already hides them: the
  store filters by age when it reads; this frees the space), then :func:`trim`.
  ``manage.py acp_purge`` runs it; schedule it (cron, a periodic task) as often as suits the volume.
* :func:`trim`: what is over the store's bounds, ``max_finished_runs`` and ``max_retained_bytes``. The
  store runs it itself as its writes approach them, so that the bounds hold between purges.

What ``max_retained_bytes`` bounds: the bytes of finished runs (each run's events and snapshot, as JSON),
of sessions (their history and state URLs) and of resources (their data), together. Past it the oldest
finished runs go first; if sessions and resources alone are over it, the least recently used of them go
too. Runs still going are never deleted: what they hold is bounded per run (``max_run_log_bytes``) and by
the engine's limits on active runs.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import F, QuerySet, Sum, Window

from . import models as db
from .ops import NOT_ENDED_VALUES, delete_runs, trim_finished

__all__ = ["Purged", "purge", "retained_bytes", "trim"]

_BATCH = 500


@dataclass
class Purged:
    """How many rows of each kind went (a run's events and signals go with it)."""

    runs: int = 0
    sessions: int = 0
    resources: int = 0
    keys: int = 0

    def __iadd__(self, other: Purged) -> Purged:
        self.runs += other.runs
        self.sessions += other.sessions
        self.resources += other.resources
        self.keys += other.keys
        return self


def purge(
    using: str,
    now: datetime,
    *,
    retention: float,
    session_retention: float,
    max_finished_runs: int,
    max_retained_bytes: int | None = None,
    dry_run: bool = False,
) -> Purged:
    """Delete (or, with ``dry_run``, count) the expired rows of ``using``, then :func:`trim` it.

    The dry run counts expired rows only: what a trim would take depends on what expires first.
    """
    run_cutoff = now - timedelta(seconds=retention)
    runs = db.Run.objects.using(using)
    finished = runs.filter(finished_at__lte=run_cutoff)
    # A run whose worker died and that no live worker failed (the whole service was down) is dead
    # for good once its lease has lapsed for as long as a finished run is kept.
    abandoned = runs.filter(status__in=NOT_ENDED_VALUES, lease_expires_at__lte=run_cutoff)
    session_cutoff = now - timedelta(seconds=session_retention)
    sessions = db.Session.objects.using(using).filter(updated_at__lte=session_cutoff)
    resources = db.Resource.objects.using(using).filter(touched_at__lte=session_cutoff)
    keys = db.IdempotencyKey.objects.using(using).filter(expires_at__lte=now)
    if dry_run:
        return Purged(
            runs=finished.count() + abandoned.count(),
            sessions=sessions.count(),
            resources=resources.count(),
            keys=keys.count(),
        )
    purged = Purged()
    purged.runs = delete_runs(using, finished) + delete_runs(using, abandoned)
    purged.sessions = _delete_sessions(using, sessions)
    purged.resources = resources.delete()[0]
    purged.keys = keys.delete()[0]
    purged += trim(using, now, max_finished_runs=max_finished_runs, max_retained_bytes=max_retained_bytes)
    return purged


def trim(
    using: str, now: datetime, *, max_finished_runs: int, max_retained_bytes: int | None = None
) -> Purged:
    """Delete the oldest finished runs past ``max_finished_runs``, the expired idempotency keys, and what
    is over ``max_retained_bytes`` (see the module's docstring). Costs three sums when within bounds."""
    purged = Purged(runs=trim_finished(using, max_finished_runs))
    purged.keys = db.IdempotencyKey.objects.using(using).filter(expires_at__lte=now).delete()[0]
    if max_retained_bytes is None:
        return purged
    run_bytes, other_bytes = retained_bytes(using)
    if run_bytes + other_bytes <= max_retained_bytes:
        return purged
    if run_bytes:
        purged.runs += _trim_runs(using, max(0, max_retained_bytes - other_bytes))
    if other_bytes > max_retained_bytes:
        sessions, resources = _trim_sessions_and_resources(using, max_retained_bytes)
        purged.sessions += sessions
        purged.resources += resources
    return purged


def retained_bytes(using: str) -> tuple[int, int]:
    """The bytes of finished runs, and of sessions and resources, that ``max_retained_bytes`` bounds."""
    finished = db.Run.objects.using(using).filter(finished_at__isnull=False)
    run_bytes = finished.aggregate(total=Sum(F("log_bytes") + F("snapshot_bytes")))["total"] or 0
    session_bytes = db.Session.objects.using(using).aggregate(total=Sum("size"))["total"] or 0
    resource_bytes = db.Resource.objects.using(using).aggregate(total=Sum("size"))["total"] or 0
    return int(run_bytes), int(session_bytes) + int(resource_bytes)


def _trim_runs(using: str, room: int) -> int:
    """Delete the oldest finished runs until the rest hold at most ``room`` bytes."""
    finished = db.Run.objects.using(using).filter(finished_at__isnull=False)
    newer_or_same = Window(
        Sum(F("log_bytes") + F("snapshot_bytes")), order_by=(F("finished_at").desc(), F("id").desc())
    )
    # The newest run that does not fit: it and every run finished no later go.
    cutoff = (
        finished.annotate(kept=newer_or_same)
        .filter(kept__gt=room)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    return 0 if cutoff is None else delete_runs(using, finished.filter(finished_at__lte=cutoff))


def _trim_sessions_and_resources(using: str, room: int) -> tuple[int, int]:
    """Delete the least recently used sessions and resources until the rest hold at most ``room`` bytes;
    returns how many of each went."""
    sessions = db.Session.objects.using(using)
    resources = db.Resource.objects.using(using)
    used: Iterator[tuple[datetime, int]] = heapq.merge(
        sessions.order_by("-updated_at").values_list("updated_at", "size").iterator(chunk_size=2000),
        resources.order_by("-touched_at").values_list("touched_at", "size").iterator(chunk_size=2000),
        key=lambda row: row[0],
        reverse=True,
    )
    kept, cutoff = 0, None
    for last_used, size in used:
        kept += size
        if kept > room:
            cutoff = last_used  # the most recently used row that does not fit: it and older ones go
            break
    if cutoff is None:
        return 0, 0
    return (
        _delete_sessions(using, sessions.filter(updated_at__lte=cutoff)),
        resources.filter(touched_at__lte=cutoff).delete()[0],
    )


def _delete_sessions(using: str, sessions: QuerySet[db.Session]) -> int:
    """Delete these sessions with their history, a batch at a time; returns how many."""
    deleted = 0
    while batch := list(sessions.values_list("id", flat=True)[:_BATCH]):
        db.SessionHistoryEntry.objects.using(using).filter(session_id__in=batch).delete()
        deleted += (
            db.Session.objects.using(using)
            .filter(pk__in=batch)
            .only("id")
            .delete()[1]
            .get(db.Session._meta.label, 0)
        )
    return deleted
