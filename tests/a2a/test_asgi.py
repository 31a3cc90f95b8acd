"""The ASGI mount in process: ``A2AApp`` beside an ``ACPApp`` on one engine, whichever loop hosts it (a
test client's loop per request, which sends both to the process's loop thread, or a lifespan's), the
middleware form, owners and the ``authorize`` hook (the example's ``/a2a-private``), CORS, and the
arguments it refuses."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from acp_adapters import Settings
from acp_adapters.a2a import A2AService
from acp_adapters.a2a.asgi import A2AApp, A2AMiddleware
from acp_adapters.asgi import ACPApp, ACPMiddleware
from example_agents import demo_registry

V1 = {"A2A-Version": "1.0"}


def _message(text: str, **ids: str) -> dict[str, Any]:
    return {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": text}], **ids}


def _rpc(client: TestClient, url: str, method: str, params: dict[str, Any], **headers: str) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    answer = client.post(url, json=body, headers={**V1, **headers})
    data: dict[str, Any] = answer.json()
    data["_status"] = answer.status_code
    return data


def _app(settings: Settings | None = None) -> tuple[Starlette, ACPApp]:
    acp = ACPApp(demo_registry(), settings=settings)
    return Starlette(routes=[Mount("/acp", app=acp), Mount("/a2a", app=A2AApp(acp))]), acp


def test_one_engine_across_requests_of_a_test_client_without_lifespan() -> None:
    app, acp = _app()
    client = TestClient(app, base_url="http://testserver")  # a loop per request: the engine is bridged
    asked = _rpc(client, "/a2a/awaiter", "SendMessage", {"message": _message("start")})["result"]["task"]
    assert asked["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    assert acp.bridged
    answered = _rpc(client, "/a2a/awaiter", "SendMessage", {"message": _message("ok", taskId=asked["id"])})
    assert answered["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    run = client.get(f"/acp/runs/{asked['id']}").json()
    assert run["status"] == "completed" and run["output"][-1]["parts"][0]["content"] == "received: ok"
    streamed = client.post(
        "/a2a/chunks",
        json={
            "jsonrpc": "2.0",
            "id": 2,
            "method": "SendStreamingMessage",
            "params": {"message": _message("3")},
        },
        headers=V1,
    )
    assert streamed.text.count("artifactUpdate") == 3 and "TASK_STATE_COMPLETED" in streamed.text


def test_a_run_started_over_acp_is_read_over_a2a_in_process() -> None:
    app, _ = _app()
    with TestClient(app, base_url="http://testserver") as client:
        run = client.post(
            "/acp/runs", json={"agent_name": "echo", "input": [{"parts": [{"content": "hi"}]}]}
        ).json()
        task = _rpc(client, "/a2a/echo", "GetTask", {"id": run["run_id"]})["result"]
        assert task["status"]["state"] == "TASK_STATE_COMPLETED"
        assert task["artifacts"][0]["parts"] == [{"text": "hi"}]


def test_the_middleware_serves_a2a_under_its_prefix() -> None:
    inner = Starlette(routes=[Route("/", lambda request: PlainTextResponse("home"))])
    acp = ACPMiddleware(inner, demo_registry(), prefix="/acp")
    app = A2AMiddleware(acp, acp.acp, prefix="/agents-a2a")
    with TestClient(app, base_url="http://testserver") as client:
        assert client.get("/").text == "home"
        card = client.get("/agents-a2a/echo/.well-known/agent-card.json").json()
        assert card["supportedInterfaces"][0]["url"] == "http://testserver/agents-a2a/echo"
        sent = _rpc(client, "/agents-a2a/echo", "SendMessage", {"message": _message("x")})
        assert client.get(f"/acp/runs/{sent['result']['task']['id']}").json()["status"] == "completed"
        assert client.get("/agents-a2a").status_code == 404


def test_owners_and_the_authorize_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    # Imported before the tokens are set: the import makes the module's own app, which other tests
    # (tests/security's starlette-inprocess) serve as the example started without tokens.
    from example_starlette.app import create_app

    monkeypatch.setenv("ACP_DEMO_TOKENS", "alice=token-a,bob=token-b")

    alice, bob = {"Authorization": "Bearer token-a"}, {"Authorization": "Bearer token-b"}
    with TestClient(create_app(), base_url="http://testserver") as client:
        card = client.get("/a2a-private/whoami/.well-known/agent-card.json")
        assert card.status_code == 401 and card.headers["www-authenticate"].startswith("Bearer")
        refused = _rpc(client, "/a2a-private/whoami", "SendMessage", {"message": _message("?")})
        assert refused["_status"] == 401 and refused["error"]["code"] == -32600
        task = _rpc(client, "/a2a-private/whoami", "SendMessage", {"message": _message("?")}, **alice)
        task = task["result"]["task"]
        assert task["artifacts"][0]["parts"][0]["text"] == "you are alice"
        assert (
            _rpc(client, "/a2a-private/whoami", "GetTask", {"id": task["id"]}, **bob)["error"]["code"]
            == -32001
        )
        mine = _rpc(client, "/a2a-private/whoami", "ListTasks", {}, **alice)["result"]
        assert [t["id"] for t in mine["tasks"]] == [task["id"]] and mine["totalSize"] == 1
        theirs = _rpc(client, "/a2a-private/whoami", "ListTasks", {}, **bob)["result"]
        assert theirs == {"tasks": [], "nextPageToken": "", "pageSize": 50, "totalSize": 0}
        by_context = _rpc(client, "/a2a-private/whoami", "ListTasks", {"contextId": task["contextId"]}, **bob)
        assert by_context["result"]["tasks"] == []
        # Bob may not continue Alice's context either.
        stolen = _rpc(
            client,
            "/a2a-private/whoami",
            "SendMessage",
            {"message": _message("?", contextId=task["contextId"])},
            **bob,
        )
        assert stolen["error"]["code"] == -32602
        # The ACP mount sees the same task, for its owner only.
        assert client.get(f"/acp-private/runs/{task['id']}", headers=alice).json()["status"] == "completed"
        assert client.get(f"/acp-private/runs/{task['id']}", headers=bob).status_code == 404


def test_cors_allows_the_version_header() -> None:
    app, _ = _app(Settings(cors_origins=("https://ui.example",)))
    with TestClient(app, base_url="http://testserver") as client:
        preflight = client.options(
            "/a2a/echo",
            headers={"Origin": "https://ui.example", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 204
        assert "a2a-version" in preflight.headers["access-control-allow-headers"]
        assert preflight.headers["access-control-allow-origin"] == "https://ui.example"


def test_the_arguments_it_refuses() -> None:
    with pytest.raises(TypeError, match="ACPApp"):
        A2AApp(demo_registry())  # type: ignore[arg-type]
    acp = ACPApp(demo_registry())
    with pytest.raises(ValueError, match="acp_url"):
        A2AService(acp.service, acp_url="acp")
    with pytest.raises(TypeError, match="ACPService"):
        A2AService(acp)  # type: ignore[arg-type]


def test_list_tasks_looks_at_the_newest_max_listed_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().max_listed_tasks == 1000
    assert Settings.from_env({"ACP_MAX_LISTED_TASKS": "2"}).max_listed_tasks == 2
    with pytest.raises(ValueError, match="max_listed_tasks"):
        Settings(max_listed_tasks=0)
    app, _ = _app(Settings(max_listed_tasks=2))
    with TestClient(app, base_url="http://testserver") as client:
        first = _rpc(client, "/a2a/echo", "SendMessage", {"message": _message("1")})["result"]["task"]
        context = first["contextId"]
        later = [
            _rpc(client, "/a2a/echo", "SendMessage", {"message": _message(text, contextId=context)})
            for text in ("2", "3")
        ]
        listed = _rpc(client, "/a2a/echo", "ListTasks", {"contextId": context})["result"]
        assert [task["id"] for task in listed["tasks"]] == [t["result"]["task"]["id"] for t in later[::-1]]
        assert listed["totalSize"] == 2 and listed["nextPageToken"] == ""
        # The oldest is not listed any more, but it is still there.
        assert _rpc(client, "/a2a/echo", "GetTask", {"id": first["id"]})["result"]["id"] == first["id"]
