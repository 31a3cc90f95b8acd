"""Rejoining a run's stream through the neutral service: the ``Accept`` negotiation, owners, the
authorize hook, heartbeats, and a client that goes away (core/rejoin.py). Every deployment runs the
HTTP contract of it in tests/contract/test_rejoin.py."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import anyio
import pytest

from acp_adapters import ACPService, AgentRegistry, Context, Settings
from acp_adapters.core.errors import PermissionRequired
from acp_adapters.core.http import Request, Response, StreamResponse
from acp_adapters.core.rejoin import wants_event_stream
from acp_adapters.models import Message, MessageAwaitRequest, MessagePart
from tests.deployments.base import parse_sse
from tests.engine.conftest import call
from tests.helpers import resume_body, run_body

pytestmark = pytest.mark.anyio

SSE = {"accept": "text/event-stream"}


@pytest.mark.parametrize(
    ("accept", "stream"),
    [
        ("text/event-stream", True),
        ("TEXT/Event-Stream ; charset=utf-8", True),
        ("text/*", True),
        ("text/event-stream, application/json;q=0.9", True),
        ("application/json;q=0.5, text/event-stream;q=0.6", True),
        ("text/event-stream;q=0.001, image/png", True),
        ("", False),
        ("*/*", False),
        ("application/json", False),
        ("application/*", False),
        ("application/json, text/event-stream", False),  # a tie: the spec's answer
        ("text/event-stream, */*", True),  # the same q: the type named exactly wins over */*
        ("text/*, */*", True),
        ("text/event-stream;q=0.5, */*", False),
        ("text/*, application/json", False),
        ("text/event-stream;q=0", False),
        ("text/event-stream;q=0.000", False),
        ("text/event-stream;q=2", False),  # a malformed q: the range is ignored
        ("text/event-stream;q=nan", False),
        ("text/event-stream;q=", False),
        ("text/html", False),
        (",,;", False),
        ("text/event-stream;q=0.5, text/*;q=1, application/json;q=0.7", False),  # the exact range wins
    ],
)
def test_the_stream_is_chosen_only_when_preferred_to_json(accept: str, stream: bool) -> None:
    assert wants_event_stream({"accept": accept}) is stream
    assert wants_event_stream({}) is False


def registry() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    async def echo(input: list[Message], context: Context) -> AsyncIterator[Message]:
        for message in input:
            yield message

    @agents.agent()
    async def asker(input: list[Message], context: Context) -> AsyncGenerator[Any, Any]:
        answer = yield MessageAwaitRequest(message=Message(parts=[MessagePart(content="?")]))
        yield answer.message if answer is not None else "none"

    return agents


async def run_id_of(service: ACPService, agent: str, owner: str | None = None) -> str:
    answer = await call(service, "POST", "/runs", run_body(agent, "hi"), owner=owner)
    assert isinstance(answer, Response), answer
    run_id: str = json.loads(answer.body)["run_id"]
    return run_id


async def read(answer: Response | StreamResponse) -> bytes:
    assert isinstance(answer, StreamResponse), answer
    return b"".join([chunk async for chunk in answer.body])


@pytest.fixture
async def service() -> AsyncIterator[ACPService]:
    service = ACPService(registry(), settings=Settings(heartbeat_interval=0.05))
    yield service
    await service.aclose()


async def test_a_run_is_rejoined_by_its_owner_only(service: ACPService) -> None:
    run_id = await run_id_of(service, "echo", owner="alice")
    path = f"/runs/{run_id}/events"
    mine = await read(await call(service, "GET", path, owner="alice", headers=SSE))
    assert [event.data["type"] for event in parse_sse(mine)[0]][-1] == "run.completed"
    for other in ("bob", None):
        for headers in (SSE, {**SSE, "last-event-id": "0"}):
            answer = await call(service, "GET", path, owner=other, headers=headers)
            assert isinstance(answer, Response)
            assert answer.status == 404, answer
            assert json.loads(answer.body)["code"] == "not_found"


async def test_the_authorize_hook_is_asked_about_the_runs_agent() -> None:
    asked: list[str | None] = []

    def authorize(request: Request, agent: str | None) -> None:
        asked.append(agent)
        if agent == "echo" and request.method == "GET":
            raise PermissionRequired()

    service = ACPService(registry(), authorize=authorize)
    try:
        run_id = await run_id_of(service, "echo")
        asked.clear()
        answer = await call(service, "GET", f"/runs/{run_id}/events", headers=SSE)
        assert isinstance(answer, Response)
        assert answer.status == 403, answer
        assert asked == [None, "echo"]
    finally:
        await service.aclose()


async def test_head_answers_as_the_json_list_would(service: ACPService) -> None:
    run_id = await run_id_of(service, "echo")
    answer = await call(service, "HEAD", f"/runs/{run_id}/events", headers=SSE)
    assert isinstance(answer, Response)
    assert answer.status == 200
    assert dict(answer.headers)["content-type"] == "application/json"


async def test_a_rejoin_at_the_tip_of_an_awaiting_run_sends_heartbeats_until_the_resume(
    service: ACPService,
) -> None:
    run_id = await run_id_of(service, "asker")  # sync mode: answered once it awaits
    answer = await call(service, "GET", f"/runs/{run_id}/events", headers={**SSE, "last-event-id": "2"})
    assert isinstance(answer, StreamResponse)
    assert dict(answer.headers)["run-id"] == run_id
    chunks: list[bytes] = []
    with anyio.fail_after(10):
        chunks.append(await answer.body.__anext__())
        chunks.append(await answer.body.__anext__())
        assert chunks == [b": ping\n\n"] * 2
        resumed = await call(service, "POST", f"/runs/{run_id}", resume_body("yes"))
        assert isinstance(resumed, Response)
        assert resumed.status == 200, resumed.body
        chunks += [chunk async for chunk in answer.body]
    events, _ = parse_sse(b"".join(chunks))
    assert [event.id for event in events] == [str(index) for index in range(3, 3 + len(events))]
    assert events[0].data["type"] == "run.in-progress"
    assert events[-1].data["type"] == "run.completed"


async def test_a_client_that_goes_away_ends_its_subscription_not_the_run(service: ACPService) -> None:
    run_id = await run_id_of(service, "asker")
    answer = await call(service, "GET", f"/runs/{run_id}/events", headers=SSE)
    assert isinstance(answer, StreamResponse)
    first = await answer.body.__anext__()
    assert parse_sse(first)[0][0].id == "0"
    aclose = getattr(answer.body, "aclose")  # noqa: B009 - an async generator's, not in the type
    await aclose()
    resumed = await call(service, "POST", f"/runs/{run_id}", resume_body("still here"))
    assert isinstance(resumed, Response)
    assert json.loads(resumed.body)["status"] == "completed"


async def test_an_id_beyond_the_log_is_refused_naming_the_ids_it_holds(service: ACPService) -> None:
    run_id = await run_id_of(service, "echo")
    answer = await call(service, "GET", f"/runs/{run_id}/events", headers={**SSE, "last-event-id": "6"})
    assert isinstance(answer, Response)
    assert answer.status == 422
    error = json.loads(answer.body)
    assert error["message"] == "Last-Event-ID 6 is not an event of this run: its log holds ids 0 to 5"
    assert error["data"] == {"fields": ["Last-Event-ID"], "events": 6}
    answer = await call(service, "GET", f"/runs/{run_id}/events", headers=SSE, query="after=5")
    assert isinstance(answer, Response)
    assert (answer.status, answer.body) == (204, b"")
