"""Cross-site requests: a POST whose user comes from Django's session cookie must pass Django's CSRF
check (as Django REST framework's ``SessionAuthentication`` has it); anonymous callers and bearer
tokens are not checked, and the project's own views keep Django's CSRF protection.

Every client here enforces CSRF checks, as browsers' requests are (Django's test client skips them
by default).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.http import HttpRequest
from django.test import AsyncClient, Client

from example_agents import BearerTokens
from example_django import private
from tests.deployments.base import HttpResult
from tests.django.conftest import Served
from tests.helpers import acp_error, ok_json, resume_body, run_body, stream_events

pytestmark = [pytest.mark.django, pytest.mark.django_db(transaction=True)]

#: A CSRF secret as Django keeps it in its cookie (32 letters and digits); the header may carry it as is.
SECRET = "k" * 16 + "7" * 16
TOKEN = "csrf-test-bearer-token"


@pytest.fixture
def user() -> Any:
    return User.objects.create_user("ada", password="not-used")


def post(
    served: Served,
    path: str,
    body: Any,
    *,
    user: Any = None,
    csrf: str | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResult:
    """POST ``body`` as JSON to ``path`` with CSRF checks on; ``user`` is logged in through the
    session, ``csrf`` is both the CSRF cookie and the ``X-CSRFToken`` header."""
    headers = dict(headers or {})
    if csrf is not None:
        headers["X-CSRFToken"] = csrf
    data = json.dumps(body).encode()

    def result(response: Any) -> HttpResult:
        return HttpResult(response.status_code, {k.lower(): v for k, v in response.items()}, response.content)

    if served.portal is None:
        client = Client(enforce_csrf_checks=True, raise_request_exception=False)
        if user is not None:
            client.force_login(user)
        if csrf is not None:
            client.cookies[django_settings.CSRF_COOKIE_NAME] = csrf
        return result(client.post(path, data, content_type="application/json", headers=headers))

    async def apost() -> HttpResult:
        client = AsyncClient(enforce_csrf_checks=True, raise_request_exception=False)
        if user is not None:
            await client.aforce_login(user)
        if csrf is not None:
            client.cookies[django_settings.CSRF_COOKIE_NAME] = csrf
        return result(await client.post(path, data, content_type="application/json", headers=headers))

    return served.portal.call(apost)


@pytest.mark.parametrize("mount", ["/acp", "/acp-private"])
def test_a_logged_in_post_without_the_csrf_token_is_refused(served: Served, user: Any, mount: str) -> None:
    refused = acp_error(
        post(served, f"{mount}/runs", run_body("echo", "hi"), user=user), 403, "invalid_input"
    )
    assert refused["message"] == "CSRF check failed: CSRF cookie not set."
    # A token in the header without the cookie it must match is no better.
    answer = post(served, f"{mount}/runs", run_body("echo", "hi"), user=user, headers={"X-CSRFToken": SECRET})
    assert "CSRF" in acp_error(answer, 403, "invalid_input")["message"]


@pytest.mark.parametrize("mount", ["/acp", "/acp-private"])
def test_a_logged_in_post_with_the_csrf_token_is_served(served: Served, user: Any, mount: str) -> None:
    run = ok_json(post(served, f"{mount}/runs", run_body("echo", "hi"), user=user, csrf=SECRET), 200, "Run")
    assert run["status"] == "completed"
    # The page's own origin is fine; another site's is refused even with the token.
    same_site = {"Origin": "http://testserver"}
    answer = post(served, f"{mount}/runs", run_body("echo", "hi"), user=user, csrf=SECRET, headers=same_site)
    assert ok_json(answer, 200, "Run")["status"] == "completed"
    cross_site = {"Origin": "https://evil.example"}
    answer = post(served, f"{mount}/runs", run_body("echo", "hi"), user=user, csrf=SECRET, headers=cross_site)
    refused = acp_error(answer, 403, "invalid_input")
    assert refused["message"].startswith("CSRF check failed: Origin checking failed")


def test_a_logged_in_user_reads_without_a_csrf_token(served: Served, user: Any) -> None:
    run = ok_json(post(served, "/acp/runs", run_body("echo", "hi"), user=user, csrf=SECRET), 200, "Run")
    target = served.target(user=user, enforce_csrf_checks=True)
    assert (
        ok_json(target.client.request("GET", f"/runs/{run['run_id']}"), 200, "Run")["status"] == "completed"
    )
    assert target.client.request("GET", "/agents").status == 200


def test_anonymous_posts_need_no_csrf_token(served: Served) -> None:
    target = served.target(enforce_csrf_checks=True)
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


def test_bearer_token_posts_need_no_csrf_token(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(private, "TOKENS", BearerTokens({TOKEN: "alice"}))
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    run = ok_json(post(served, "/acp-private/runs", run_body("whoami", "?"), headers=bearer), 200, "Run")
    assert run["output"][0]["parts"][0]["content"] == "you are alice"


def test_an_owner_function_from_the_settings_needs_no_csrf_token(served: Served, settings: Any) -> None:
    def api_key(request: HttpRequest) -> str | None:
        return request.headers.get("X-Api-Key")

    settings.ACP_ADAPTERS = {**django_settings.ACP_ADAPTERS, "OWNER": api_key}
    answer = post(served, "/acp/runs", run_body("echo", "hi"), headers={"X-Api-Key": "team-a"})
    assert ok_json(answer, 200, "Run")["status"] == "completed"


def test_the_csrf_refusal_carries_the_cors_headers(served: Served, user: Any, settings: Any) -> None:
    origin = "https://app.example.com"
    settings.ACP_ADAPTERS = {**django_settings.ACP_ADAPTERS, "SETTINGS": {"cors_origins": [origin]}}
    settings.CSRF_TRUSTED_ORIGINS = [origin]
    answer = post(served, "/acp/runs", run_body("echo", "hi"), user=user, headers={"Origin": origin})
    acp_error(answer, 403, "invalid_input")
    assert answer.headers["access-control-allow-origin"] == origin
    served_run = post(
        served, "/acp/runs", run_body("echo", "hi"), user=user, csrf=SECRET, headers={"Origin": origin}
    )
    assert ok_json(served_run, 200, "Run")["status"] == "completed"


def test_the_projects_own_forms_still_need_a_csrf_token(user: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    # The admin's logout view takes POSTs and is CSRF-protected: without a token, Django refuses it.
    assert client.post("/admin/logout/").status_code == 403
