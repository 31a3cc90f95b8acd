"""The ACP API is CSRF-exempt (programs post JSON to it, not forms), also for logged-in sessions,
while the project's own views keep Django's CSRF protection."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.django.conftest import Served
from tests.helpers import ok_json, resume_body, run_body, stream_events

pytestmark = [pytest.mark.django, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def user() -> Any:
    return User.objects.create_user("ada", password="not-used")


@pytest.mark.parametrize("logged_in", [False, True])
def test_posts_need_no_csrf_token(served: Served, user: Any, logged_in: bool) -> None:
    target = served.target(user=user if logged_in else None, enforce_csrf_checks=True)
    run = ok_json(target.client.request("POST", "/runs", json=run_body("echo", "hi")), 200, "Run")
    assert run["status"] == "completed"
    awaiting = stream_events(target.client.request("POST", "/runs", json=run_body("awaiter", mode="stream")))
    run_id = awaiting[0]["run"]["run_id"]
    resumed = ok_json(target.client.request("POST", f"/runs/{run_id}", json=resume_body("yes")), 200, "Run")
    assert resumed["status"] == "completed"
    slow_run = run_body("slow-echo", "a", mode="async")
    slow = ok_json(target.client.request("POST", "/runs", json=slow_run), 202, "Run")
    cancelled = target.client.request("POST", f"/runs/{slow['run_id']}/cancel")
    assert ok_json(cancelled, 202, "Run")["status"] in ("cancelling", "cancelled")


def test_the_projects_own_forms_still_need_a_csrf_token(user: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    # The admin's logout view takes POSTs and is CSRF-protected: without a token, Django refuses it.
    assert client.post("/admin/logout/").status_code == 403
