"""Deleting what the database store no longer serves: expired runs, sessions and resources.

The API already hides expired rows (the store filters by age when it reads); this frees the space.
``manage.py acp_purge`` runs it; schedule it (cron, a periodic task) as often as suits the volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from . import models as db
from .db_ops import NON_TERMINAL, delete_runs, trim_finished

__all__ = ["Purged", "purge"]


@dataclass
class Purged:
    """How many rows of each kind went (a run's events and signals go with it)."""

    runs: int = 0
    sessions: int = 0
    resources: int = 0


def purge(
    using: str,
    now: datetime,
    *,
    retention: float,
    session_retention: float,
    max_finished_runs: int,
    dry_run: bool = False,
) -> Purged:
    """Delete (or, with ``dry_run``, count) the expired rows of ``using``."""
    run_cutoff = now - timedelta(seconds=retention)
    runs = db.Run.objects.using(using)
    finished = runs.filter(finished_at__lte=run_cutoff)
    # A run whose worker died and that no live worker failed (the whole service was down) is dead
    # for good once its lease has lapsed for as long as a finished run is kept.
    abandoned = runs.filter(status__in=NON_TERMINAL, lease_expires_at__lte=run_cutoff)
    session_cutoff = now - timedelta(seconds=session_retention)
    sessions = db.Session.objects.using(using).filter(updated_at__lte=session_cutoff)
    resources = db.Resource.objects.using(using).filter(touched_at__lte=session_cutoff)
    if dry_run:
        return Purged(
            runs=finished.count() + abandoned.count(), sessions=sessions.count(), resources=resources.count()
        )
    purged = Purged()
    purged.runs = delete_runs(using, finished) + delete_runs(using, abandoned)
    purged.runs += trim_finished(using, max_finished_runs)
    while batch := list(sessions.values_list("id", flat=True)[:500]):
        db.SessionHistoryEntry.objects.using(using).filter(session_id__in=batch).delete()
        purged.sessions += (
            db.Session.objects.using(using)
            .filter(pk__in=batch)
            .only("id")
            .delete()[1]
            .get(db.Session._meta.label, 0)
        )
    purged.resources = resources.delete()[0]
    return purged
