"""The admin pages of the database store: runs and their events, shown and never written."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from acp_adapters.core.models import Message, MessagePart, Run, RunStatus
from acp_adapters.core.store import EventRecord, RunRecord
from acp_adapters.django.db import models as db
from acp_adapters.django.db import ops as db_ops

# Our own URLconf: the tests do not depend on the project that configured Django (example_django may).
pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.django_store.urls")]


@pytest.fixture
def run() -> Run:
    """A completed run with three events, in the default database (the admin's)."""
    now = timezone.now()
    run = Run(agent_name="echo", status=RunStatus.IN_PROGRESS)
    db_ops.create_run(
        "default", RunRecord(run=run, owner="alice"), [EventRecord("run.created", b'{"n":0}')], now, 10
    )
    db_ops.append_events(
        "default",
        run.run_id,
        [
            EventRecord("message.part", b'{"part":{"content":"<b>hi</b>"}}'),
            EventRecord("run.completed", b"{}"),
        ],
        now,
    )
    output = [Message(role="agent/echo", parts=[MessagePart(content="hi")])]
    db_ops.update_run(
        "default", run.run_id, {"status": RunStatus.COMPLETED, "output": output}, None, now, 3600
    )
    return run


def test_runs_are_listed_and_filtered(admin_client: Client, run: Run) -> None:
    url = reverse("admin:acp_adapters_run_changelist")
    page = admin_client.get(url)
    assert page.status_code == 200
    text = page.content.decode()  # (Django 5.2's response.text is too new for our range)
    assert str(run.run_id) in text and "alice" in text
    assert str(run.run_id) in admin_client.get(url, {"status__exact": "completed"}).content.decode()
    assert str(run.run_id) not in admin_client.get(url, {"status__exact": "failed"}).content.decode()
    assert "Add ACP run" not in text


def test_a_run_page_shows_the_snapshot_read_only(admin_client: Client, run: Run) -> None:
    url = reverse("admin:acp_adapters_run_change", args=[run.run_id])
    page = admin_client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "&quot;agent_name&quot;: &quot;echo&quot;" in text  # the snapshot, pretty-printed and escaped
    assert "3 events" in text
    assert 'name="_save"' not in text and "Delete" not in text
    assert admin_client.post(url, {"status": "failed"}).status_code == 403
    assert admin_client.get(reverse("admin:acp_adapters_run_add")).status_code == 403
    assert admin_client.get(reverse("admin:acp_adapters_run_delete", args=[run.run_id])).status_code == 403


def test_a_runs_events_are_listed_in_order(admin_client: Client, run: Run) -> None:
    other = Run(agent_name="other")
    db_ops.create_run(
        "default", RunRecord(run=other), [EventRecord("run.created", b"{}")], timezone.now(), 10
    )
    # The link on the run's page.
    url = reverse("admin:acp_adapters_runevent_changelist") + f"?run={run.run_id}"
    assert (
        f'href="{url}"'
        in admin_client.get(reverse("admin:acp_adapters_run_change", args=[run.run_id])).content.decode()
    )
    page = admin_client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert text.index("run.created") < text.index("message.part") < text.index("run.completed")
    assert "other run" not in text
    assert "3 ACP run events" in text


def test_an_event_page_shows_its_json_escaped(admin_client: Client, run: Run) -> None:
    pk = db.RunEvent.objects.get(run_id=run.run_id, seq=1).pk
    page = admin_client.get(reverse("admin:acp_adapters_runevent_change", args=[pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "&lt;b&gt;hi&lt;/b&gt;" in text and "<b>hi</b>" not in text
    assert 'name="_save"' not in text
    delete = reverse("admin:acp_adapters_runevent_delete", args=[pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert db.RunEvent.objects.filter(pk=pk).exists()


def test_a_missing_run_is_not_found_or_redirected(admin_client: Client) -> None:
    page = admin_client.get(reverse("admin:acp_adapters_run_change", args=[uuid.uuid4()]))
    assert page.status_code in (302, 404)
