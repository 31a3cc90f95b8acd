"""``manage.py acp_purge``: delete expired ACP runs, sessions and resources from the database store."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from acp_adapters.django.db_purge import purge
from acp_adapters.django.store import DjangoStore


class Command(BaseCommand):
    help = (
        "Delete expired ACP runs (with their events), sessions and resources from the database store. "
        "Retention comes from the configured store (ACP_ADAPTERS['STORE'] when it is a DjangoStore) or "
        "from ACP_ADAPTERS['SETTINGS']; the options override it."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--database", help="database alias (default: the configured store's)")
        parser.add_argument("--retention", type=float, help="seconds a finished run is kept")
        parser.add_argument("--session-retention", type=float, help="seconds a session is kept after use")
        parser.add_argument("--max-finished-runs", type=int, help="finished runs kept at most")
        parser.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        store = _configured_store()
        using = options["database"] or store.using
        retention = store.retention if options["retention"] is None else options["retention"]
        session_retention = options["session_retention"]
        if session_retention is None:
            session_retention = retention if options["retention"] is not None else store.session_retention
        keep = (
            store.max_finished_runs if options["max_finished_runs"] is None else options["max_finished_runs"]
        )
        if min(retention, session_retention, keep) < 0:
            raise CommandError("retention and --max-finished-runs must not be negative")
        purged = purge(
            using,
            timezone.now(),
            retention=retention,
            session_retention=session_retention,
            max_finished_runs=keep,
            dry_run=options["dry_run"],
        )
        verb = "Would delete" if options["dry_run"] else "Deleted"
        self.stdout.write(
            f"{verb} {purged.runs} run(s) with their events, {purged.sessions} session(s) "
            f"and {purged.resources} resource(s) from database {using!r}."
        )


def _configured_store() -> DjangoStore:
    """The project's DjangoStore (for its alias and retention), or one with the settings' defaults."""
    from acp_adapters.django.conf import conf

    factory = conf.store_factory if conf.configured else None
    if factory is not None:
        store = factory()
        if isinstance(store, DjangoStore):
            return store
    return DjangoStore()
