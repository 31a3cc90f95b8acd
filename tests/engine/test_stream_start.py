"""A stream run's agent starts once the stream's first event has been taken (its reader asks for the
next), or ``STREAM_START_WAIT`` after the run's creation if nobody reads: the answer's headers and
first event leave before the agent takes the loop. Sync and async runs start at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from acp_adapters import AgentRegistry, Context
from acp_adapters.core import engine
from acp_adapters.core.engine import STREAM_START_WAIT
from acp_adapters.core.http import Response, StreamResponse
from acp_adapters.models import Message, MessagePart
from tests.helpers import run_body, sse_data

from .conftest import Call

pytestmark = pytest.mark.anyio


def counting_registry(calls: list[str]) -> AgentRegistry:
    """``count`` notes each of its steps in ``calls``: its start, then each part it yields."""
    agents = AgentRegistry()

    @agents.agent()
    async def count(input: list[Message], context: Context) -> AsyncIterator[MessagePart]:
        calls.append("started")
        for number in range(3):
            calls.append(f"part {number}")
            yield MessagePart(content=str(number))

    return agents


async def turns(count: int = 20) -> None:
    """Let the loop run everything that is ready, several times over."""
    for _ in range(count):
        await asyncio.sleep(0)


async def create_stream(call: Call) -> StreamResponse:
    response = await call("POST", "/runs", run_body("count", mode="stream"))
    assert isinstance(response, StreamResponse) and response.status == 200
    return response


async def test_the_agent_starts_when_the_stream_asks_for_its_second_event(
    make_call: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "STREAM_START_WAIT", 60.0)  # only the reader starts it here
    calls: list[str] = []
    call = make_call(counting_registry(calls))
    stream = await create_stream(call)
    await turns()
    assert calls == []  # created, answered, and the agent has not taken the loop
    first = await stream.body.__anext__()
    assert [event["type"] for event in sse_data(first)] == ["run.created"]
    await turns()
    assert calls == []  # the first event has been taken, not yet written by the server
    rest = b"".join([chunk async for chunk in stream.body])
    assert calls == ["started", "part 0", "part 1", "part 2"]
    types = [event["type"] for event in sse_data(rest)]
    assert types[0] == "run.in-progress" and types[-1] == "run.completed"
    assert types.count("message.part") == 3


async def test_a_stream_nobody_reads_runs_all_the_same(make_call: Any) -> None:
    calls: list[str] = []
    call = make_call(counting_registry(calls))
    stream = await create_stream(call)
    run_id = dict(stream.headers)["run-id"]
    await asyncio.sleep(STREAM_START_WAIT / 2)
    assert calls == []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STREAM_START_WAIT + 5
    while (await call.json("GET", f"/runs/{run_id}"))[1]["status"] != "completed":
        assert loop.time() < deadline, "the run did not start without a reader"
        await asyncio.sleep(0.01)
    assert calls == ["started", "part 0", "part 1", "part 2"]
    await stream.body.aclose()  # type: ignore[attr-defined]  # the body is an async generator


async def test_a_stream_run_cancelled_before_its_agent_starts_ends_cancelled(make_call: Any) -> None:
    calls: list[str] = []
    call = make_call(counting_registry(calls))
    stream = await create_stream(call)
    run_id = dict(stream.headers)["run-id"]
    status, run = await call.json("POST", f"/runs/{run_id}/cancel")
    assert status == 202 and run["status"] in ("cancelling", "cancelled")
    types = [event["type"] for event in sse_data(b"".join([chunk async for chunk in stream.body]))]
    assert types[0] == "run.created" and types[-1] == "run.cancelled"
    assert "message.part" not in types
    assert "part 0" not in calls  # stopped before it yielded anything


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_sync_and_async_runs_start_at_once(make_call: Any, mode: str) -> None:
    calls: list[str] = []
    call = make_call(counting_registry(calls))
    response = await call("POST", "/runs", run_body("count", mode=mode))
    assert isinstance(response, Response) and response.status == (200 if mode == "sync" else 202)
    await turns()
    assert calls[:1] == ["started"]
