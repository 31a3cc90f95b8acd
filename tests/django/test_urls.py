"""Routing under Django: every path under the mount goes to the core, whatever ``APPEND_SLASH`` says,
and the view that serves it is the async one under ASGI, the sync one under WSGI."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import AsyncClient, Client
from django.urls import reverse

from acp_adapters.django.views import site
from tests.deployments.base import HttpResult
from tests.django.conftest import Served
from tests.helpers import DEMO_AGENTS, acp_error, ok_json, run_body, stream_events

pytestmark = pytest.mark.django


@pytest.mark.parametrize("append_slash", [True, False])
def test_paths_answer_without_a_trailing_slash(served: Served, append_slash: bool, settings: Any) -> None:
    settings.APPEND_SLASH = append_slash
    target = served.target()
    agents = ok_json(target.client.request("GET", "/agents"), 200, "AgentsListResponse")
    assert [agent["name"] for agent in agents["agents"]] == list(DEMO_AGENTS)
    body = run_body("echo", "hi", session_id=str(uuid.uuid4()))  # a named session keeps its history
    run = ok_json(target.client.request("POST", "/runs", json=body), 200, "Run")
    assert run["status"] == "completed"
    got = ok_json(target.client.request("GET", f"/runs/{run['run_id']}"), 200, "Run")
    assert got["run_id"] == run["run_id"]


@pytest.mark.parametrize("append_slash", [True, False])
def test_no_path_under_the_mount_is_redirected(served: Served, append_slash: bool, settings: Any) -> None:
    settings.APPEND_SLASH = append_slash
    target = served.target()
    # Unknown paths are the core's 404 in ACP JSON, not Django's page nor a redirect to "path/".
    for path in ("/nope", "/agents/nope", "/runs/x/y/z", "/", "/nope/", "/nope%0A", "/agents/%0A"):
        acp_error(target.client.request("GET", path), 404, "not_found")
    # A trailing slash is the core's business too (it takes it), never a 301 from CommonMiddleware.
    assert target.client.request("GET", "/agents/").status == 200


def test_the_mount_is_reversible() -> None:
    assert reverse("acp:api", kwargs={"path": "runs"}) == "/acp/runs"
    assert reverse("acp-private:api", kwargs={"path": "agents"}) == "/acp-private/agents"


def test_the_projects_own_pages_are_untouched(served: Served) -> None:
    assert served.target("").client.request("GET", "/").status == 200
    # Outside the mount Django answers as usual (its 404 page, not ACP JSON).
    answer = served.target("").client.request("GET", "/elsewhere")
    assert answer.status == 404 and not answer.headers["content-type"].startswith("application/json")


def test_base_url_is_the_mount_url(served: Served) -> None:
    target = served.target()
    body = run_body("echo", "hi", session_id=str(uuid.uuid4()))  # a named session keeps its history
    run = ok_json(target.client.request("POST", "/runs", json=body), 200, "Run")
    session = ok_json(target.client.request("GET", f"/sessions/{run['session_id']}"), 200, "Session")
    history = session["history"]
    assert history and all(url.startswith("http://testserver/acp/resources/") for url in history)


def test_wsgi_is_served_by_the_sync_view_with_a_sync_stream(wsgi: Served) -> None:
    response: Any = Client().post("/acp/runs", run_body("echo", "hi", mode="stream"), "application/json")
    assert response.wsgi_request.resolver_match.func is site.sync_view
    # A sync iterator: Django streams it under WSGI instead of buffering it whole.
    assert response.streaming and not response.is_async
    body = b"".join(response.streaming_content)  # closes the response at the end
    assert _event_types(body)[-1] == "run.completed"


def test_asgi_is_served_by_the_async_view_with_an_async_stream(asgi: Served) -> None:
    async def stream() -> tuple[Any, bytes]:
        body = run_body("echo", "hi", mode="stream")
        response: Any = await AsyncClient().post("/acp/runs", body, "application/json")
        return response, b"".join([chunk async for chunk in response.streaming_content])

    response, body = asgi.call(stream)
    assert response.asgi_request.resolver_match.func is site.async_view
    assert response.streaming and response.is_async
    assert _event_types(body)[-1] == "run.completed"


def _event_types(body: bytes) -> list[str]:
    headers = {"content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no"}
    result = HttpResult(200, headers, body)
    return [event["type"] for event in stream_events(result)]
