"""``manage.py acp_purge`` and the app's migrations, on SQLite and on PostgreSQL."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from acp_adapters.core.models import Run, RunStatus
from acp_adapters.core.store import EventRecord, RunRecord, SessionRecord
from acp_adapters.django.db import models as db
from acp_adapters.django.db import ops as db_ops
from acp_adapters.django.db.models import Resource, RunEvent, Session, SessionHistoryEntry

HOUR = 3600.0


def run_at(
    alias: str, now: datetime, status: RunStatus = RunStatus.COMPLETED, lease: float = 10
) -> uuid.UUID:
    """A run created at ``now`` with two events, finished then unless ``status`` is not terminal."""
    run = Run(agent_name="echo")
    db_ops.create_run(alias, RunRecord(run=run), [EventRecord("run.created", b"{}")], now, lease)
    db_ops.append_events(alias, run.run_id, [EventRecord("generic", b"{}")], now)
    if status is not RunStatus.CREATED:
        db_ops.update_run(alias, run.run_id, {"status": status}, None, now, HOUR)
    return run.run_id


def purge(alias: str, *args: str) -> str:
    out = StringIO()
    call_command("acp_purge", "--database", alias, *args, stdout=out)
    return out.getvalue()


def runs(alias: str) -> set[uuid.UUID]:
    return set(db.Run.objects.using(alias).values_list("id", flat=True))


def test_purge_removes_expired_runs_sessions_and_resources(alias: str) -> None:
    now = timezone.now()
    old, fresh = now - timedelta(hours=2), now - timedelta(minutes=5)
    expired, kept = run_at(alias, old), run_at(alias, fresh, RunStatus.FAILED)
    going = run_at(alias, old, RunStatus.CREATED, lease=3 * HOUR)  # its worker still renews it
    abandoned = run_at(alias, old, RunStatus.CREATED, lease=1)  # nobody failed it: the service was down
    stale, live = uuid.uuid4(), uuid.uuid4()
    old_resource, named_resource, new_resource = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for resource_id in (old_resource, named_resource):
        db_ops.put_resource(alias, resource_id, b"r", None, old)
    db_ops.put_resource(alias, new_resource, b"r", None, fresh)
    db_ops.put_session(alias, SessionRecord(id=stale, history=["http://h/u"]), old)
    # A session used lately keeps the resources its history names, however old they are.
    db_ops.extend_session(alias, live, [f"http://h/acp/resources/{named_resource}"], None, None, fresh, HOUR)

    assert "Would delete 2 run(s) with their events, 1 session(s), 1 resource(s)" in purge(alias, "--dry-run")
    assert len(runs(alias)) == 4

    assert "Deleted 2 run(s) with their events, 1 session(s), 1 resource(s)" in purge(
        alias, "--retention", "3600"
    )
    assert runs(alias) == {kept, going}
    assert not RunEvent.objects.using(alias).filter(run_id__in=[expired, abandoned]).exists()
    assert RunEvent.objects.using(alias).filter(run_id=kept).count() == 2
    assert set(Session.objects.using(alias).values_list("id", flat=True)) == {live}
    assert not SessionHistoryEntry.objects.using(alias).filter(session_id=stale).exists()
    assert set(Resource.objects.using(alias).values_list("id", flat=True)) == {named_resource, new_resource}


def test_purge_keeps_at_most_max_finished_runs(alias: str) -> None:
    now = timezone.now()
    finished = [run_at(alias, now - timedelta(seconds=60 - i)) for i in range(5)]
    going = run_at(alias, now - timedelta(hours=1), RunStatus.CREATED, lease=HOUR)
    purge(alias, "--max-finished-runs", "2")
    assert runs(alias) == {*finished[3:], going}


def test_purge_takes_its_retention_from_the_settings(alias: str) -> None:
    now = timezone.now()
    two_minutes_old, new = run_at(alias, now - timedelta(minutes=2)), run_at(alias, now)
    purge(alias)  # the default retention (an hour) keeps both
    assert runs(alias) == {two_minutes_old, new}
    with override_settings(ACP_ADAPTERS={"SETTINGS": {"run_retention": 60}}):
        assert "Deleted 1 run(s)" in purge(alias)
    assert runs(alias) == {new}


def test_purge_rejects_a_negative_retention(alias: str) -> None:
    with pytest.raises(CommandError, match="negative"):
        purge(alias, "--retention", "-1")


@pytest.mark.django_db  # makemigrations checks the default database's migration history
def test_the_models_match_the_migrations() -> None:
    # Exits with status 1 when a model change has no migration.
    call_command("makemigrations", "acp_adapters", "--check", "--dry-run", verbosity=0)


def test_the_migrations_unapply_and_apply_cleanly(alias: str) -> None:
    call_command("migrate", "acp_adapters", "zero", database=alias, verbosity=0)
    assert "acp_adapters_run" not in _tables(alias)
    call_command("migrate", "acp_adapters", database=alias, verbosity=0)
    assert {"acp_adapters_run", "acp_adapters_runevent", "acp_adapters_session"} <= _tables(alias)
    run_at(alias, timezone.now())
    assert len(runs(alias)) == 1


def _tables(alias: str) -> set[str]:
    from django.db import connections

    return set(connections[alias].introspection.table_names())


def test_snapshots_written_as_json_before_0003_are_read_after_it(alias: str) -> None:
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    call_command("migrate", "acp_adapters", "0002", database=alias, verbosity=0)
    old_apps = (
        MigrationExecutor(connections[alias]).loader.project_state(("acp_adapters", "0002_run_worker")).apps
    )
    run = Run(agent_name="echo", status=RunStatus.COMPLETED)
    now = timezone.now()
    old_apps.get_model("acp_adapters", "Run").objects.using(alias).create(
        id=run.run_id,
        agent_name="echo",
        status="completed",
        snapshot=run.model_dump(mode="json"),
        created_at=now,
        updated_at=now,
        finished_at=now,
    )
    call_command("migrate", "acp_adapters", database=alias, verbosity=0)
    record = db_ops.get_run(alias, run.run_id, timezone.now(), HOUR)
    assert record is not None and record.run == run


def test_rows_written_before_0004_get_their_byte_counts(alias: str) -> None:
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    call_command("migrate", "acp_adapters", "0003", database=alias, verbosity=0)
    old = MigrationExecutor(connections[alias]).loader.project_state(
        ("acp_adapters", "0003_run_snapshot_text")
    )
    model = functools.partial(old.apps.get_model, "acp_adapters")
    now = timezone.now()
    run_id, session_id, resource_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    model("Run").objects.using(alias).create(
        id=run_id, agent_name="echo", status="completed", snapshot='{"s":1}', created_at=now, updated_at=now
    )
    for seq, data in enumerate(['{"type":"a"}', '{"type":"bb"}']):
        model("RunEvent").objects.using(alias).create(
            run_id=run_id, seq=seq, type="generic", data=data, created_at=now
        )
    model("Session").objects.using(alias).create(
        id=session_id, state="http://h/s", created_at=now, updated_at=now
    )
    model("SessionHistoryEntry").objects.using(alias).create(
        session_id=session_id, position=0, url="http://h/1"
    )
    model("Resource").objects.using(alias).create(
        id=resource_id, data=b"12345", created_at=now, touched_at=now
    )
    call_command("migrate", "acp_adapters", database=alias, verbosity=0)
    run = db.Run.objects.using(alias).get(pk=run_id)
    assert (run.log_bytes, run.snapshot_bytes) == (12 + 13, 7)
    assert db.Session.objects.using(alias).get(pk=session_id).size == 10 + 10
    assert db.Resource.objects.using(alias).get(pk=resource_id).size == 5
