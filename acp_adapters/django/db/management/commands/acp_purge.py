"""``manage.py acp_purge``: delete expired ACP runs, sessions, resources and idempotency keys from the
database store, and what is over its bounds (``max_finished_runs``, ``max_retained_bytes``)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from acp_adapters.django.db.purge import purge
from acp_adapters.django.db.store import DjangoStore


class Command(BaseCommand):
    help = (
        "Delete expired ACP runs (with their events), sessions, resources and idempotency keys from the "
        "database store, then the oldest of what is over max_finished_runs and max_retained_bytes. "
        "Retention and bounds come from the configured store (ACP_ADAPTERS['STORE'] when it is a "
        "DjangoStore) or from ACP_ADAPTERS['SETTINGS']; the options override them."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--database", help="database alias (default: the configured store's)")
        parser.add_argument("--retention", type=float, help="seconds a finished run is kept")
        parser.add_argument("--session-retention", type=float, help="seconds a session is kept after use")
        parser.add_argument("--max-finished-runs", type=int, help="finished runs kept at most")
        parser.add_argument(
            "--max-retained-bytes",
            type=int,
            help="bytes of finished runs, sessions and resources kept at most (the oldest runs go first)",
        )
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
        budget = store.max_retained_bytes
        if options["max_retained_bytes"] is not None:
            budget = options["max_retained_bytes"]
        if min(retention, session_retention, keep, budget) < 0:
            raise CommandError("retention, --max-finished-runs and --max-retained-bytes must not be negative")
        purged = purge(
            using,
            timezone.now(),
            retention=retention,
            session_retention=session_retention,
            max_finished_runs=keep,
            max_retained_bytes=budget,
            dry_run=options["dry_run"],
        )
        verb = "Would delete" if options["dry_run"] else "Deleted"
        self.stdout.write(
            f"{verb} {purged.runs} run(s) with their events, {purged.sessions} session(s), "
            f"{purged.resources} resource(s) and {purged.keys} idempotency key(s) from database {using!r}."
        )


def _configured_store() -> DjangoStore:
    """The project's DjangoStore (for its alias and retention), or one on the default database, tuned
    by ``ACP_ADAPTERS["SETTINGS"]`` as the default mount's service tunes it (no service runs here)."""
    from acp_adapters.django.conf import conf

    store: object = None
    if conf.configured and conf.store_factory is not None:
        store = conf.store_factory()
    if not isinstance(store, DjangoStore):
        store = DjangoStore()
    store.configure(conf.settings)
    return store
