"""Django's auth in front of the ACP API: the example's guarded mount (a logged-in user or a bearer
token for the agent ``whoami``), guards and owners from ``ACP_ADAPTERS``, and runs scoped to owners."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from acp_adapters.django import AuthenticationRequired
from tests.django.conftest import Served, needs_login_required_middleware
from tests.helpers import acp_error, ok_json, run_body

pytestmark = [pytest.mark.django, pytest.mark.django_db(transaction=True)]

TOKEN = "s3cret-demo-token"


@pytest.fixture
def user() -> Any:
    return User.objects.create_user("ada", password="not-used")


@pytest.fixture(autouse=True)
def demo_token(monkeypatch: pytest.MonkeyPatch) -> None:
    # The example reads ACP_DEMO_TOKENS once, at import: give it the token of the owner "token".
    from example_agents import BearerTokens
    from example_django import private

    monkeypatch.setattr(private, "TOKENS", BearerTokens({TOKEN: "token"}))


def whoami(target: Any, headers: dict[str, str] | None = None) -> Any:
    return target.client.request("POST", "/runs", json=run_body("whoami", "?"), headers=headers)


def test_the_guarded_agent_turns_anonymous_callers_away(served: Served) -> None:
    target = served.target("/acp-private")
    for method, path in (("GET", "/ping"), ("GET", "/agents"), ("GET", "/agents/whoami")):
        answer = target.client.request(method, path)
        acp_error(answer, 401, "invalid_input")
        assert answer.headers["www-authenticate"] == 'Bearer realm="acp"'
    acp_error(whoami(target), 401, "invalid_input")
    acp_error(whoami(target, {"Authorization": "Bearer wrong"}), 401, "invalid_input")
    acp_error(whoami(target, {"Authorization": TOKEN}), 401, "invalid_input")
    # The other mount is open.
    assert served.target().client.request("GET", "/agents").status == 200


def test_the_guarded_agent_answers_the_token_holder(served: Served) -> None:
    target = served.target("/acp-private")
    run = ok_json(whoami(target, {"Authorization": f"Bearer {TOKEN}"}), 200, "Run")
    assert run["output"][0]["parts"][0]["content"] == "you are token"


def test_the_guarded_agent_answers_a_logged_in_user(served: Served, user: Any) -> None:
    target = served.target("/acp-private", user=user)
    run = ok_json(whoami(target), 200, "Run")
    assert run["output"][0]["parts"][0]["content"] == f"you are {user.pk}"
    agents = ok_json(target.client.request("GET", "/agents"), 200, "AgentsListResponse")
    assert "whoami" in [agent["name"] for agent in agents["agents"]]


def test_runs_belong_to_the_user_who_started_them(served: Served, user: Any) -> None:
    other = User.objects.create_user("bob", password="not-used")
    mine = served.target(user=user)
    run = ok_json(mine.client.request("POST", "/runs", json=run_body("echo", "hi")), 200, "Run")
    path = f"/runs/{run['run_id']}"
    assert ok_json(mine.client.request("GET", path), 200, "Run")["run_id"] == run["run_id"]
    acp_error(served.target().client.request("GET", path), 404, "not_found")
    acp_error(served.target(user=other).client.request("GET", path), 404, "not_found")
    acp_error(served.target(user=other).client.request("GET", f"/sessions/{run['session_id']}"), 404)


def test_a_guard_from_the_settings_guards_the_default_mount(served: Served, user: Any, settings: Any) -> None:
    settings.ACP_ADAPTERS = {**django_settings.ACP_ADAPTERS, "GUARD": "acp_adapters.django.login_required"}
    acp_error(served.target().client.request("GET", "/agents"), 401, "invalid_input")
    assert served.target(user=user).client.request("GET", "/agents").status == 200


def test_permission_required_answers_403_to_users_without_the_permission(
    served: Served, user: Any, settings: Any
) -> None:
    from acp_adapters.django import permission_required

    guard = permission_required("auth.view_user")
    settings.ACP_ADAPTERS = {**django_settings.ACP_ADAPTERS, "GUARD": guard}
    acp_error(served.target().client.request("GET", "/agents"), 401)
    denied = acp_error(served.target(user=user).client.request("GET", "/agents"), 403, "invalid_input")
    assert "auth.view_user" in denied["message"]
    boss = User.objects.create_superuser("boss", password="not-used")
    assert served.target(user=boss).client.request("GET", "/agents").status == 200


def test_a_guard_may_raise_djangos_permission_denied(served: Served, settings: Any) -> None:
    def closed(request: HttpRequest) -> None:
        raise PermissionDenied("closed for maintenance")

    settings.ACP_ADAPTERS = {**django_settings.ACP_ADAPTERS, "GUARD": closed}
    denied = acp_error(served.target().client.request("GET", "/agents"), 403, "invalid_input")
    assert denied["message"] == "closed for maintenance"


def test_an_owner_function_from_the_settings_scopes_runs(served: Served, settings: Any) -> None:
    def team(request: HttpRequest) -> str | None:
        return request.headers.get("X-Team")

    settings.ACP_ADAPTERS = {**django_settings.ACP_ADAPTERS, "OWNER": team}
    target = served.target()
    created = target.client.request("POST", "/runs", json=run_body("echo", "hi"), headers={"X-Team": "a"})
    path = f"/runs/{ok_json(created, 200, 'Run')['run_id']}"
    assert target.client.request("GET", path, headers={"X-Team": "a"}).status == 200
    acp_error(target.client.request("GET", path, headers={"X-Team": "b"}), 404, "not_found")


def test_guard_refusals_are_the_cores_with_cors_and_www_authenticate(served: Served, settings: Any) -> None:
    origin = "https://app.example.com"

    def bearer_only(request: HttpRequest) -> None:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            raise AuthenticationRequired("send the token", challenge='Bearer realm="acp"')
        if request.headers.get("X-Role") == "guest":
            raise PermissionDenied("guests may not")

    settings.ACP_ADAPTERS = {
        **django_settings.ACP_ADAPTERS,
        "SETTINGS": {"cors_origins": [origin]},
        "GUARD": bearer_only,
    }
    target = served.target()
    refused = target.client.request("POST", "/runs", json=run_body("echo", "hi"), headers={"Origin": origin})
    assert acp_error(refused, 401, "invalid_input")["message"] == "send the token"
    assert refused.headers["www-authenticate"] == 'Bearer realm="acp"'
    assert refused.headers["access-control-allow-origin"] == origin
    assert "run-id" in refused.headers["access-control-expose-headers"]
    headers = {"Origin": origin, "Authorization": f"Bearer {TOKEN}", "X-Role": "guest"}
    denied = target.client.request("GET", "/agents", headers=headers)
    assert acp_error(denied, 403, "invalid_input")["message"] == "guests may not"
    assert (
        denied.headers["access-control-allow-origin"] == origin and "www-authenticate" not in denied.headers
    )
    # Another origin gets the refusal without the CORS headers, as any other answer.
    elsewhere = target.client.request("GET", "/agents", headers={"Origin": "https://evil.example"})
    acp_error(elsewhere, 401)
    assert "access-control-allow-origin" not in elsewhere.headers
    served_run = target.client.request(
        "POST", "/runs", json=run_body("echo", "hi"), headers=headers | {"X-Role": "x"}
    )
    assert ok_json(served_run, 200, "Run")["status"] == "completed"


@needs_login_required_middleware
def test_the_api_works_under_djangos_login_required_middleware(
    served: Served, user: Any, settings: Any
) -> None:
    from django.test import Client

    settings.MIDDLEWARE = [
        *django_settings.MIDDLEWARE,
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ]
    # The project's own pages now need a login: the middleware is on.
    assert Client().get("/").status_code == 302
    # The ACP views are not redirected: the guard decides, anonymous callers included.
    target = served.target()
    assert ok_json(target.client.request("GET", "/agents"), 200, "AgentsListResponse")["agents"]
    run = ok_json(target.client.request("POST", "/runs", json=run_body("echo", "hi")), 200, "Run")
    assert run["status"] == "completed"
    private = served.target("/acp-private")
    acp_error(private.client.request("POST", "/runs", json=run_body("whoami", "?")), 401, "invalid_input")
    mine = ok_json(served.target("/acp-private", user=user).client.request("GET", "/agents"), 200, None)
    assert "whoami" in [agent["name"] for agent in mine["agents"]]


def test_the_cores_authorize_hook_from_the_settings_decides_per_agent(served: Served, settings: Any) -> None:
    from acp_adapters.core.http import Request
    from acp_adapters.django import PermissionRequired

    seen: list[Any] = []

    def no_echo_for_guests(request: Request, agent: str | None) -> None:
        seen.append(request.native)
        if agent == "echo" and request.headers.get("x-role") == "guest":
            raise PermissionRequired("guests may not use echo")

    settings.ACP_ADAPTERS = {**django_settings.ACP_ADAPTERS, "AUTHORIZE": no_echo_for_guests}
    target = served.target()
    guest = {"X-Role": "guest"}
    denied = target.client.request("POST", "/runs", json=run_body("echo", "hi"), headers=guest)
    assert acp_error(denied, 403, "invalid_input")["message"] == "guests may not use echo"
    agents = ok_json(target.client.request("GET", "/agents", headers=guest), 200, "AgentsListResponse")
    names = [agent["name"] for agent in agents["agents"]]
    assert "echo" not in names and "gen-echo" in names
    assert ok_json(
        target.client.request("POST", "/runs", json=run_body("gen-echo", "hi"), headers=guest), 200, "Run"
    )
    assert ok_json(target.client.request("POST", "/runs", json=run_body("echo", "hi")), 200, "Run")
    assert all(isinstance(native, HttpRequest) for native in seen) and seen
