"""Lifecycle edges of the run engine: await, resume, cancel, timeouts, failures, dropped streams."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

import anyio
import pytest

from acp_adapters import AgentRegistry, Context
from acp_adapters.core.http import StreamResponse
from acp_adapters.core.lifecycle import ENDING_EVENTS, TRANSITIONS
from acp_adapters.models import Message, MessageAwaitRequest, MessageAwaitResume, RunStatus
from tests.helpers import resume_body, run_body, sse_data

pytestmark = pytest.mark.anyio


def awaiting_registry() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    async def ask(input: list[Message], context: Context) -> AsyncGenerator[Any, Any]:
        resume = yield MessageAwaitRequest(message=Message(parts=[{"content": "name?"}]))
        assert isinstance(resume, MessageAwaitResume)
        yield f"hello {resume.message.text}"

    return agents


async def wait_status(call: Any, run_id: str, status: str, timeout: float = 5.0) -> dict[str, Any]:
    with anyio.fail_after(timeout):
        while True:
            _, run = await call.json("GET", f"/runs/{run_id}")
            if run["status"] == status:
                assert isinstance(run, dict)
                return run
            await asyncio.sleep(0.01)


async def test_cancel_while_awaiting_then_resume_conflicts(make_call: Any) -> None:
    call = make_call(awaiting_registry())
    status, run = await call.run("ask")
    assert (status, run["status"]) == (200, "awaiting")
    status, cancelled = await call.json("POST", f"/runs/{run['run_id']}/cancel")
    assert (status, cancelled["status"]) == (202, "cancelling")
    await wait_status(call, run["run_id"], "cancelled")
    status, error = await call.json("POST", f"/runs/{run['run_id']}", resume_body("x"))
    assert status == 409 and error["code"] == "invalid_input"


async def test_await_timeout_fails_the_run(make_call: Any) -> None:
    call = make_call(awaiting_registry(), await_timeout=0.1)
    _, run = await call.run("ask")
    failed = await wait_status(call, run["run_id"], "failed")
    assert failed["error"]["code"] == "server_error"
    assert failed["error"]["data"] == {"reason": "await_timeout"}
    status, _ = await call.json("POST", f"/runs/{run['run_id']}", resume_body("late"))
    assert status == 409


async def test_resume_clears_await_request_and_racing_resumes_one_wins(make_call: Any) -> None:
    call = make_call(awaiting_registry())
    _, run = await call.run("ask")
    assert run["await_request"]["message"]["parts"][0]["content"] == "name?"
    results = await asyncio.gather(
        *(call.json("POST", f"/runs/{run['run_id']}", resume_body(str(i))) for i in range(5))
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409, 409, 409, 409]
    done = next(body for status, body in results if status == 200)
    assert done["status"] == "completed" and "await_request" not in done
    assert done["output"][0]["parts"][0]["content"].startswith("hello ")


async def test_resume_and_cancel_race_apply_one_at_a_time(make_call: Any) -> None:
    """Whichever reaches the awaiting run first takes it: a cancel first makes the resume a 409; a
    resume first leaves an in-progress run, which the cancel then (legitimately) cancels."""
    call = make_call(awaiting_registry())
    for first in ("resume", "cancel"):
        _, run = await call.run("ask")
        resume = call.json("POST", f"/runs/{run['run_id']}", resume_body("x"))
        cancel = call.json("POST", f"/runs/{run['run_id']}/cancel")
        if first == "cancel":
            (cancel_status, _), (resume_status, _) = await asyncio.gather(cancel, resume)
            assert (cancel_status, resume_status) == (202, 409)
        else:
            resumed: Any
            (resume_status, resumed), (cancel_status, _) = await asyncio.gather(resume, cancel)
            assert resume_status == 200 and resumed["status"] in ("completed", "cancelled")
            assert cancel_status in (202, 409)
        final = await wait_status(call, run["run_id"], "cancelled" if cancel_status == 202 else "completed")
        assert "await_request" not in final


async def test_agent_that_raises_after_yielding_fails_with_server_error(make_call: Any) -> None:
    agents = AgentRegistry()

    @agents.agent()
    async def flaky(input: list[Message]) -> AsyncIterator[str]:
        yield "partial"
        raise KeyError("secret internals")

    call = make_call(agents)
    events = await call.stream("flaky")
    assert [e["type"] for e in events] == [
        "run.created",
        "run.in-progress",
        "message.created",
        "message.part",
        "run.failed",
    ]
    error = events[-1]["run"]["error"]
    assert error["code"] == "server_error" and "secret" not in error["message"]


async def test_sync_agents_run_in_worker_threads(make_call: Any) -> None:
    agents = AgentRegistry()
    seen: list[int] = []

    @agents.agent()
    def plain(input: list[Message]) -> str:
        seen.append(threading.get_ident())
        return "plain"

    @agents.agent()
    def gen(input: list[Message], context: Context) -> Iterator[Any]:
        seen.append(threading.get_ident())
        yield "a"
        context.yield_sync("b")  # nested code yields too
        yield None
        yield {"progress": 1}

    call = make_call(agents)
    _, run = await call.run("plain")
    assert run["output"][0]["parts"][0]["content"] == "plain"
    events = await call.stream("gen")
    assert [e["type"] for e in events].count("message.completed") == 1
    assert events[-2] == {"type": "generic", "generic": {"progress": 1}}
    assert threading.get_ident() not in seen and len(seen) == 2


async def test_cancel_stops_a_sync_generator_and_frees_its_thread(make_call: Any) -> None:
    agents = AgentRegistry()
    produced: list[int] = []

    @agents.agent()
    def ticker(input: list[Message]) -> Iterator[str]:
        for i in range(1000):
            produced.append(i)
            time.sleep(0.01)
            yield str(i)

    call = make_call(agents, sync_agent_threads=2)
    _, run = await call.run("ticker", mode="async")
    await asyncio.sleep(0.1)
    await call.json("POST", f"/runs/{run['run_id']}/cancel")
    await wait_status(call, run["run_id"], "cancelled")
    count = len(produced)
    await asyncio.sleep(0.1)
    assert len(produced) <= count + 1 < 100
    limiter = call.service.engine.limiter
    assert limiter is not None and limiter.borrowed_tokens == 0


async def test_plain_function_learns_it_was_cancelled(make_call: Any) -> None:
    agents = AgentRegistry()
    noticed = threading.Event()

    @agents.agent()
    def patient(input: list[Message], context: Context) -> str:
        if context.cancel_event.wait(5):
            noticed.set()
        return "too late"

    call = make_call(agents)
    _, run = await call.run("patient", mode="async")
    await asyncio.sleep(0.05)
    await call.json("POST", f"/runs/{run['run_id']}/cancel")
    cancelled = await wait_status(call, run["run_id"], "cancelled")
    assert noticed.is_set() and cancelled["output"] == []


async def test_a_dropped_stream_does_not_stop_the_run(make_call: Any) -> None:
    agents = AgentRegistry()

    @agents.agent()
    async def slowish(input: list[Message]) -> AsyncIterator[str]:
        for i in range(5):
            await asyncio.sleep(0.02)
            yield str(i)

    call = make_call(agents)
    response = await call("POST", "/runs", run_body("slowish", mode="stream"))
    assert isinstance(response, StreamResponse)
    first = await response.body.__anext__()
    await response.body.aclose()  # type: ignore[attr-defined]  # the body is an async generator
    run_id = sse_data(first)[0]["run"]["run_id"]
    run = await wait_status(call, run_id, "completed")
    assert [p["content"] for p in run["output"][0]["parts"]] == ["0", "1", "2", "3", "4"]
    _, events = await call.json("GET", f"/runs/{run_id}/events")
    assert events["events"][-1]["type"] == "run.completed"


async def test_a_fast_agent_never_loses_its_first_events(make_call: Any) -> None:
    agents = AgentRegistry()

    @agents.agent()
    async def instant(input: list[Message]) -> AsyncIterator[str]:
        yield "x"

    call = make_call(agents)
    response = await call("POST", "/runs", run_body("instant", mode="stream"))
    await asyncio.sleep(0.05)  # the run is over before the stream is read
    assert isinstance(response, StreamResponse)
    body = b"".join([chunk async for chunk in response.body])
    assert body.startswith(b'id: 0\ndata: {"type":"run.created"')
    assert sse_data(body)[-1]["type"] == "run.completed"


async def test_silent_runs_get_heartbeats(make_call: Any) -> None:
    agents = AgentRegistry()

    @agents.agent()
    async def quiet(input: list[Message]) -> AsyncIterator[str]:
        await asyncio.sleep(0.3)
        yield "done"

    call = make_call(agents, heartbeat_interval=0.05)
    response = await call("POST", "/runs", run_body("quiet", mode="stream"))
    assert isinstance(response, StreamResponse)
    body = b"".join([chunk async for chunk in response.body])
    assert b": ping\n\n" in body and sse_data(body)[-1]["type"] == "run.completed"


async def test_sync_agents_run_inside_the_hosts_context() -> None:
    from contextlib import contextmanager

    from acp_adapters import ACPService

    from .conftest import Call

    local = threading.local()

    @contextmanager
    def host_context() -> Iterator[None]:
        local.inside = True
        try:
            yield
        finally:
            local.inside = False

    agents = AgentRegistry()

    @agents.agent()
    def plain(input: list[Message]) -> str:
        return f"plain {getattr(local, 'inside', False)}"

    @agents.agent()
    def gen(input: list[Message]) -> Iterator[str]:
        yield f"gen {getattr(local, 'inside', False)}"

    service = ACPService(agents, sync_agent_context=host_context)
    call = Call(service)
    for name in ("plain", "gen"):
        _, run = await call.run(name)
        assert run["output"][0]["parts"][0]["content"] == f"{name} True"
    await service.aclose()


def test_the_transition_table_and_is_terminal_agree() -> None:
    """A status ends a run (``RunStatus.is_terminal``) exactly when the lifecycle allows it no move."""
    for status in RunStatus:
        assert status.is_terminal == (not TRANSITIONS[status].to), status
    ends = {TRANSITIONS[status].event for status in RunStatus if status.is_terminal}
    assert ends == ENDING_EVENTS == {"run.completed", "run.failed", "run.cancelled"}
