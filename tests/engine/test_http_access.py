"""Who may do what through the neutral HTTP layer: the authorize hook, resources scoped by owner, and
Idempotency-Key."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from acp_adapters import ACPService, AgentRegistry, Context
from acp_adapters.core.errors import AuthenticationRequired, PermissionRequired
from acp_adapters.core.http import Request, Response, StreamResponse
from acp_adapters.models import Message, MessagePart
from tests.engine.conftest import call
from tests.helpers import JSON, run_body

pytestmark = pytest.mark.anyio


def registry() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    async def echo(input: list[Message], context: Context) -> AsyncIterator[Message]:
        for message in input:
            yield message

    @agents.agent()
    async def secret(input: list[Message], context: Context) -> str:
        return "hush"

    @agents.agent()
    async def asker(input: list[Message], context: Context) -> AsyncGenerator[Any, Any]:
        from acp_adapters.models import MessageAwaitRequest

        answer = yield MessageAwaitRequest(message=Message(parts=[MessagePart(content="?")]))
        yield answer.message if answer is not None else "none"

    return agents


async def answer(service: ACPService, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
    response = await call(service, method, path, body, **kw)
    assert isinstance(response, Response)
    return response.status, json.loads(response.body)


# authorize ----------------------------------------------------------------------------------------
class Gate:
    """A hook: anonymous callers get 401; only "root" may use the agent ``secret``. Records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    async def __call__(self, request: Request, agent: str | None) -> None:
        self.calls.append((request.path, agent))
        await anyio.lowlevel.checkpoint()
        if request.owner is None:
            raise AuthenticationRequired("log in", challenge='Bearer realm="acp"')
        if agent == "secret" and request.owner != "root":
            raise PermissionRequired("not for you")


async def test_authorize_guards_every_route_but_ping() -> None:
    gate = Gate()
    service = ACPService(registry(), authorize=gate)
    assert (await answer(service, "GET", "/ping"))[0] == 200
    assert gate.calls == []
    rid, sid = uuid.uuid4(), uuid.uuid4()
    for method, path, body in (
        ("GET", "/agents", None),
        ("GET", "/agents/echo", None),
        ("POST", "/runs", run_body("echo")),
        ("GET", f"/runs/{rid}", None),
        ("POST", f"/runs/{rid}", {"await_resume": {"message": {"parts": [{"content": "x"}]}}}),
        ("POST", f"/runs/{rid}/cancel", None),
        ("GET", f"/runs/{rid}/events", None),
        ("GET", f"/sessions/{sid}", None),
        ("GET", f"/resources/{rid}", None),
    ):
        response = await call(service, method, path, body)
        assert isinstance(response, Response)
        assert response.status == 401, (path, response.body)
        assert ("www-authenticate", 'Bearer realm="acp"') in response.headers
    assert all(agent is None for _, agent in gate.calls)


async def test_authorize_is_called_with_the_agent_of_each_operation() -> None:
    gate = Gate()
    service = ACPService(registry(), authorize=gate)
    status, agents = await answer(service, "GET", "/agents", owner="ann")
    assert status == 200 and [a["name"] for a in agents["agents"]] == ["echo", "asker"]
    root_agents = (await answer(service, "GET", "/agents", owner="root"))[1]["agents"]
    assert [a["name"] for a in root_agents] == ["echo", "secret", "asker"]
    assert (await answer(service, "GET", "/agents/secret", owner="ann"))[0] == 403
    assert (await answer(service, "GET", "/agents/secret", owner="root"))[0] == 200
    assert (await answer(service, "POST", "/runs", run_body("secret"), owner="ann"))[0] == 403
    status, run = await answer(service, "POST", "/runs", run_body("secret"), owner="root")
    assert status == 200 and run["status"] == "completed"

    gate.calls.clear()
    status, run = await answer(service, "POST", "/runs", run_body("asker", mode="async"), owner="ann")
    rid = run["run_id"]
    for method, path in (("GET", f"/runs/{rid}"), ("GET", f"/runs/{rid}/events")):
        assert (await answer(service, method, path, owner="ann"))[0] == 200
    resume = {"await_resume": {"message": {"parts": [{"content": "x"}]}}, "mode": "async"}
    for _ in range(100):
        if (await answer(service, "GET", f"/runs/{rid}", owner="ann"))[1]["status"] == "awaiting":
            break
        await anyio.sleep(0.01)
    assert (await answer(service, "POST", f"/runs/{rid}", resume, owner="ann"))[0] == 202
    assert {agent for _, agent in gate.calls} == {None, "asker"}
    assert (f"/runs/{rid}", "asker") in gate.calls


async def test_a_denied_run_operation_changes_nothing() -> None:
    service = ACPService(registry())
    _, run = await answer(service, "POST", "/runs", run_body("asker", mode="async"), owner="ann")
    rid = run["run_id"]

    def deny_asker(request: Request, agent: str | None) -> None:
        if agent == "asker":
            raise PermissionRequired("asker is closed")

    service.authorize = deny_asker
    assert (await answer(service, "POST", f"/runs/{rid}/cancel", owner="ann"))[0] == 403
    assert (await answer(service, "GET", f"/runs/{rid}", owner="ann"))[0] == 403
    service.authorize = None
    assert (await answer(service, "GET", f"/runs/{rid}", owner="ann"))[1]["status"] != "cancelling"
    # Someone else's run: 404 before the hook is asked about its agent.
    service.authorize = deny_asker
    assert (await answer(service, "GET", f"/runs/{rid}", owner="bob"))[0] == 404


# resources ----------------------------------------------------------------------------------------
async def test_a_resource_of_another_owner_is_a_404_like_a_missing_one() -> None:
    service = ACPService(registry())
    mine, shared, missing = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await service.store.put_resource(mine, b'{"x":1}', owner="alice")
    await service.store.put_resource(shared, b'{"y":2}', owner=None)
    assert await answer(service, "GET", f"/resources/{mine}", owner="alice") == (200, {"x": 1})
    for owner in ("bob", None, ""):
        status, error = await answer(service, "GET", f"/resources/{mine}", owner=owner)
        _, absent = await answer(service, "GET", f"/resources/{missing}", owner=owner)
        assert status == 404 and error["message"] == absent["message"].replace(str(missing), str(mine))
    assert (await answer(service, "GET", f"/resources/{shared}", owner="bob"))[0] == 200


async def test_the_history_of_a_session_is_its_owners_only() -> None:
    service = ACPService(registry())
    session = str(uuid.uuid4())
    status, _ = await answer(
        service, "POST", "/runs", {**run_body("echo"), "session_id": session}, owner="alice"
    )
    assert status == 200
    history = (await answer(service, "GET", f"/sessions/{session}", owner="alice"))[1]["history"]
    assert history
    for url in history:
        path = url.removeprefix("http://test/acp")
        assert (await answer(service, "GET", path, owner="alice"))[0] == 200
        assert (await answer(service, "GET", path, owner="bob"))[0] == 404
        assert (await answer(service, "GET", path))[0] == 404


# idempotency --------------------------------------------------------------------------------------
async def test_the_same_key_and_body_answer_with_the_same_run() -> None:
    service = ACPService(registry())
    body = run_body("echo", "once", mode="async")
    key = {**JSON, "idempotency-key": "order-42"}
    first = await call(service, "POST", "/runs", body, headers=key, owner="alice")
    again = await call(service, "POST", "/runs", body, headers=key, owner="alice")
    assert isinstance(first, Response) and isinstance(again, Response)
    assert first.status == again.status == 202
    run_id = json.loads(first.body)["run_id"]
    assert json.loads(again.body)["run_id"] == run_id and ("run-id", run_id) in again.headers
    # sync mode waits for it; stream mode streams it from its first event
    status, run = await answer(service, "POST", "/runs", {**body, "mode": "sync"}, headers=key, owner="alice")
    assert status == 409  # another body: its mode differs
    sync_body = run_body("echo", "sync once")
    sync_key = {**JSON, "idempotency-key": "sync-1"}
    status, run = await answer(service, "POST", "/runs", sync_body, headers=sync_key)
    status_again, run_again = await answer(service, "POST", "/runs", sync_body, headers=sync_key)
    assert status == status_again == 200 and run_again == run and run["status"] == "completed"
    stream_body = run_body("echo", "streamed", mode="stream")
    stream_key = {**JSON, "idempotency-key": "stream-1"}
    streams = []
    for _ in range(2):
        response = await call(service, "POST", "/runs", stream_body, headers=stream_key)
        assert isinstance(response, StreamResponse)
        streams.append(b"".join([chunk async for chunk in response.body]))
    assert streams[0] == streams[1] and streams[0].startswith(b"id: 0\n") and b"run.completed" in streams[0]


async def test_the_same_key_with_another_body_is_a_409_naming_the_key() -> None:
    service = ACPService(registry())
    key = {**JSON, "idempotency-key": "k-1"}
    assert (await answer(service, "POST", "/runs", run_body("echo", "a"), headers=key))[0] == 200
    status, error = await answer(service, "POST", "/runs", run_body("echo", "b"), headers=key)
    assert status == 409 and "k-1" in error["message"] and error["data"] == {"idempotency_key": "k-1"}


async def test_keys_are_scoped_per_owner() -> None:
    service = ACPService(registry())
    key = {**JSON, "idempotency-key": "shared-name"}
    body = run_body("echo", "x", mode="async")
    ids = set()
    for owner in ("alice", "bob", None, "alice:x"):
        status, run = await answer(service, "POST", "/runs", body, headers=key, owner=owner)
        assert status == 202
        ids.add(run["run_id"])
    assert len(ids) == 4


async def test_a_key_refused_for_a_limit_stays_free_for_the_retry() -> None:
    from acp_adapters import Settings

    service = ACPService(registry(), settings=Settings(max_active_runs=1))
    body = run_body("asker", "wait", mode="async")
    assert (await answer(service, "POST", "/runs", body))[0] == 202  # holds the only slot: it awaits
    key = {**JSON, "idempotency-key": "retry-me"}
    retry = run_body("echo", "later", mode="async")
    status, error = await answer(service, "POST", "/runs", retry, headers=key)
    assert status == 429 and error["data"]["limit"] == "max_active_runs"
    service.engine.settings = Settings(max_active_runs=3)  # capacity frees up
    status, run = await answer(service, "POST", "/runs", retry, headers=key)
    assert status == 202, run
    status_again, run_again = await answer(service, "POST", "/runs", retry, headers=key)
    assert status_again == 202 and run_again["run_id"] == run["run_id"]


@pytest.mark.parametrize("key", ["", "a b", "é", "x" * 256, "tab\there"])
async def test_a_malformed_key_is_a_422(key: str) -> None:
    service = ACPService(registry())
    status, error = await answer(
        service, "POST", "/runs", run_body("echo"), headers={**JSON, "idempotency-key": key}
    )
    assert status == 422 and error["data"] == {"fields": ["Idempotency-Key"]}


async def test_the_asgi_and_wsgi_adapters_take_the_hook() -> None:
    import httpx
    from werkzeug.test import Client

    from acp_adapters.asgi import ACPApp
    from acp_adapters.wsgi import ACPWSGIApp

    def authorize(request: Request, agent: str | None) -> None:
        if "authorization" not in request.headers:
            raise AuthenticationRequired(challenge="Bearer")

    asgi = ACPApp(registry(), authorize=authorize)
    transport = httpx.ASGITransport(app=asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        denied = await client.get("/agents")
        assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer"
        assert (await client.get("/agents", headers={"authorization": "Bearer x"})).status_code == 200
    await asgi.service.aclose()
    wsgi = ACPWSGIApp(registry(), authorize=authorize)
    try:
        response = await anyio.to_thread.run_sync(lambda: Client(wsgi).get("/agents"))
        assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
    finally:
        wsgi.close()


async def test_a_key_sent_for_an_unknown_agent_stays_free() -> None:
    service = ACPService(registry())
    key = {**JSON, "idempotency-key": "typo"}
    assert (await answer(service, "POST", "/runs", run_body("ecko"), headers=key))[0] == 404
    assert (await answer(service, "POST", "/runs", run_body("echo"), headers=key))[0] == 200
