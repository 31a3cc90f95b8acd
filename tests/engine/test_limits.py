"""Limits on the work and memory of active runs: how many may execute, for how long, how much log.

Each limit is hit, answered with its error (429 with ``Retry-After`` before any work, or a failed run
naming the reason), and freed again once the runs holding it end.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest

from acp_adapters import ACPService, AgentRegistry, Context, Settings
from acp_adapters.core.http import Response
from acp_adapters.core.memory_store import MemoryStore
from acp_adapters.models import Message, MessageAwaitRequest
from tests.helpers import resume_body, run_body

from .conftest import Call

pytestmark = pytest.mark.anyio


def limited_registry(*, ask_cap: int | None = None) -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent(max_active_runs=ask_cap)
    async def ask(input: list[Message], context: Context) -> AsyncIterator[Any]:
        """Awaits a resume, then answers: an active run for as long as the test wants."""
        yield MessageAwaitRequest(message=Message(parts=[{"content": "go on?"}]))
        yield "done"

    @agents.agent()
    async def echo(input: list[Message]) -> AsyncIterator[Message]:
        for message in input:
            yield message

    return agents


async def refused(call: Call, agent: str, **kw: Any) -> dict[str, Any]:
    """POST a run that a limit refuses; checks the 429 and its Retry-After, returns the ACP error."""
    response = await call("POST", "/runs", run_body(agent), **kw)
    assert isinstance(response, Response)
    assert response.status == 429, response.body
    assert ("retry-after", "1") in [(name.lower(), value) for name, value in response.headers]
    error: dict[str, Any] = json.loads(response.body)
    assert error["code"] == "invalid_input"
    return error


async def wait_status(
    call: Call, run_id: str, status: str, timeout: float = 5.0, **kw: Any
) -> dict[str, Any]:
    with anyio.fail_after(timeout):
        while True:
            _, run = await call.json("GET", f"/runs/{run_id}", **kw)
            if run["status"] == status:
                assert isinstance(run, dict)
                return run
            await asyncio.sleep(0.01)


def assert_idle(call: Call) -> None:
    """Every slot and every byte the runs took was given back."""
    engine = call.service.engine
    assert engine.log_bytes == 0
    assert (engine.active._active, engine.active._by_agent, engine.active._by_owner) == (0, {}, {})


# active runs ----------------------------------------------------------------------------------------
async def test_max_active_runs_refuses_before_any_work_and_frees_when_a_run_ends(make_call: Any) -> None:
    call = make_call(limited_registry(), max_active_runs=2)
    runs = [await call.run("ask") for _ in range(2)]
    assert [(status, run["status"]) for status, run in runs] == [(200, "awaiting")] * 2

    error = await refused(call, "echo")
    assert error["data"] == {"limit": "max_active_runs", "max_active_runs": 2}
    assert "2 runs" in error["message"]
    # Refused before any store write: a session it named was not claimed (another identity may).
    session_id = str(uuid.uuid4())
    response = await call("POST", "/runs", {**run_body("echo"), "session_id": session_id}, owner="alice")
    assert response.status == 429
    assert (await call.json("GET", f"/sessions/{session_id}"))[0] == 404

    # Cancelled, awaiting and in-progress runs all count until they end; an ended run frees its slot.
    first = runs[0][1]["run_id"]
    assert (await call.json("POST", f"/runs/{first}/cancel"))[0] == 202
    await wait_status(call, first, "cancelled")
    status, run = await call.run("echo")
    assert (status, run["status"]) == (200, "completed")
    status, third = await call.run("ask")
    assert (status, third["status"]) == (200, "awaiting")
    await refused(call, "echo")

    for run_id in (runs[1][1]["run_id"], third["run_id"]):
        status, done = await call.json("POST", f"/runs/{run_id}", resume_body("yes"))
        assert (status, done["status"]) == (200, "completed")
    assert_idle(call)


async def test_max_active_runs_per_owner_counts_each_identity_and_anonymous_as_one(make_call: Any) -> None:
    call = make_call(limited_registry(), max_active_runs_per_owner=1)
    _, alice = await call.run("ask", owner="alice")
    assert alice["status"] == "awaiting"
    error = await refused(call, "echo", owner="alice")
    assert error["data"] == {"limit": "max_active_runs_per_owner", "max_active_runs_per_owner": 1}

    # Another identity, and the anonymous callers (one count between them), have slots of their own.
    assert (await call.run("echo", owner="bob"))[1]["status"] == "completed"
    _, anonymous = await call.run("ask")
    assert anonymous["status"] == "awaiting"
    await refused(call, "echo")

    status, done = await call.json("POST", f"/runs/{alice['run_id']}", resume_body("y"), owner="alice")
    assert (status, done["status"]) == (200, "completed")
    assert (await call.run("echo", owner="alice"))[1]["status"] == "completed"
    await call.json("POST", f"/runs/{anonymous['run_id']}/cancel")
    await wait_status(call, anonymous["run_id"], "cancelled")
    assert (await call.run("echo"))[1]["status"] == "completed"
    assert_idle(call)


async def test_an_agent_declares_its_own_cap(make_call: Any) -> None:
    call = make_call(limited_registry(ask_cap=1))
    assert call.service.engine.registry.get("ask").max_active_runs == 1
    _, first = await call.run("ask")
    error = await refused(call, "ask", owner="someone-else")
    assert error["data"] == {
        "limit": "max_active_runs_per_agent",
        "max_active_runs_per_agent": 1,
        "agent_name": "ask",
    }
    assert "agent ask" in error["message"]
    assert (await call.run("echo"))[1]["status"] == "completed"  # other agents are not held back

    await call.json("POST", f"/runs/{first['run_id']}", resume_body("y"))
    status, second = await call.run("ask")
    assert (status, second["status"]) == (200, "awaiting")
    await call.json("POST", f"/runs/{second['run_id']}", resume_body("y"))
    assert_idle(call)


@pytest.mark.parametrize("cap", [0, -1, True, 1.5, "2"])
def test_an_agent_cap_must_be_a_whole_number_of_at_least_one(cap: Any) -> None:
    agents = AgentRegistry()
    with pytest.raises(ValueError, match="max_active_runs"):
        agents.add(lambda input: "x", name="capped", max_active_runs=cap)
    assert "capped" not in agents
    assert agents.add(lambda input: "x", name="capped", max_active_runs=3).max_active_runs == 3
    assert agents.add(lambda input: "x", name="free").max_active_runs is None


async def test_a_refused_create_on_an_unknown_session_owner_gives_its_slot_back(make_call: Any) -> None:
    """A create that fails after taking its slot (another identity's session: 404) frees it."""
    call = make_call(limited_registry(), max_active_runs=1)
    session_id = str(uuid.uuid4())
    body = {**run_body("echo"), "session_id": session_id}
    assert (await call.json("POST", "/runs", body, owner="alice"))[0] == 200
    for _ in range(3):
        assert (await call.json("POST", "/runs", body, owner="bob"))[0] == 404
    assert (await call.run("echo"))[1]["status"] == "completed"
    assert_idle(call)


# run duration ---------------------------------------------------------------------------------------
DURATION = 0.3
SLACK = 0.5


def duration_error() -> dict[str, Any]:
    return {
        "code": "server_error",
        "message": f"the run took longer than {DURATION:g} s",
        "data": {"reason": "max_run_duration"},
    }


async def test_max_run_duration_fails_a_slow_async_agent(make_call: Any) -> None:
    agents = AgentRegistry()
    stopped = asyncio.Event()

    @agents.agent()
    async def slow(input: list[Message]) -> AsyncIterator[str]:
        yield "started"
        try:
            await asyncio.sleep(30)
            yield "never"
        finally:
            stopped.set()

    call = make_call(agents, max_run_duration=DURATION)
    began = time.monotonic()
    status, run = await call.run("slow")
    elapsed = time.monotonic() - began
    assert (status, run["status"]) == (200, "failed")
    assert run["error"] == duration_error()
    assert [part["content"] for part in run["output"][0]["parts"]] == ["started"]
    assert DURATION <= elapsed < DURATION + SLACK
    with anyio.fail_after(1):
        await stopped.wait()  # the agent was interrupted, as by a cancel
    assert_idle(call)


async def test_max_run_duration_counts_awaiting_time(make_call: Any) -> None:
    call = make_call(limited_registry(), max_run_duration=DURATION, max_active_runs=1)
    began = time.monotonic()
    _, run = await call.run("ask")
    assert run["status"] == "awaiting"
    failed = await wait_status(call, run["run_id"], "failed")
    assert DURATION <= time.monotonic() - began < DURATION + SLACK
    assert failed["error"] == duration_error()
    assert "await_request" not in failed
    status, error = await call.json("POST", f"/runs/{run['run_id']}", resume_body("late"))
    assert status == 409 and error["data"] == {"status": "failed"}
    assert (await call.run("echo"))[1]["status"] == "completed"  # its slot is free again
    assert_idle(call)


async def test_max_run_duration_fails_a_sync_agent_that_ignores_cancel_at_once(make_call: Any) -> None:
    agents = AgentRegistry()
    release = threading.Event()
    finished = threading.Event()

    @agents.agent()
    def stubborn(input: list[Message], context: Context) -> str:
        release.wait(10)  # ignores context.cancelled
        finished.set()
        return "too late"

    @agents.agent()
    def stubborn_gen(input: list[Message]) -> Iterator[str]:
        yield "first"
        release.wait(10)
        yield "too late"

    call = make_call(agents, max_run_duration=DURATION, max_active_runs=1)
    try:
        for name in ("stubborn", "stubborn_gen"):
            began = time.monotonic()
            status, run = await call.run(name.replace("_", "-"))
            assert (status, run["status"]) == (200, "failed")
            assert run["error"] == duration_error()
            assert DURATION <= time.monotonic() - began < DURATION + SLACK
            assert not release.is_set()  # the agent's thread still holds on...
            assert call.service.engine.log_bytes == 0  # ...but the run's slot and bytes are free
        assert not finished.is_set()
    finally:
        release.set()
    with anyio.fail_after(5):
        while not finished.is_set():
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    _, run = await call.json("GET", f"/runs/{run['run_id']}")
    assert run["status"] == "failed" and "too late" not in str(run["output"])
    assert_idle(call)


async def test_a_run_that_ends_in_time_keeps_its_outcome(make_call: Any) -> None:
    call = make_call(limited_registry(), max_run_duration=0.1)
    _, run = await call.run("echo")
    await asyncio.sleep(0.25)
    _, again = await call.json("GET", f"/runs/{run['run_id']}")
    assert again["status"] == "completed" and "error" not in again


# run log ---------------------------------------------------------------------------------------------
def chunky_registry(counts: dict[str, int]) -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    async def chunks(input: list[Message]) -> AsyncIterator[str]:
        """Like the example's chunks: as many parts as asked for."""
        for _ in range(int(input[0].parts[0].content or "0")):
            counts["async"] = counts.get("async", 0) + 1
            yield "x" * 100

    @agents.agent()
    def sync_chunks(input: list[Message]) -> Iterator[str]:
        for _ in range(int(input[0].parts[0].content or "0")):
            counts["sync"] = counts.get("sync", 0) + 1
            yield "x" * 100

    return agents


@pytest.mark.parametrize("agent", ["chunks", "sync-chunks"])
async def test_max_run_log_bytes_fails_a_run_whose_agent_writes_too_much(make_call: Any, agent: str) -> None:
    counts: dict[str, int] = {}
    limit = 20_000
    call = make_call(chunky_registry(counts), max_run_log_bytes=limit)
    status, run = await call.run(agent, "100000")
    assert (status, run["status"]) == (200, "failed")
    assert run["error"] == {
        "code": "server_error",
        "message": f"the run's events went over {limit} bytes",
        "data": {"reason": "max_run_log_bytes"},
    }
    assert sum(counts.values()) < 200  # the agent was stopped at the limit, not run to its end

    events = await call.service.store.read_events(uuid.UUID(run["run_id"]), 0)
    assert events[-1].type == "run.failed"
    assert sum(len(event.data) for event in events[:-1]) <= limit  # the oversize event was not stored
    parts = [e for e in events if e.type == "message.part"]
    assert len(run["output"][0]["parts"]) == len(parts)  # the output holds only what was stored

    # The server keeps answering, and a run within the limit still completes.
    assert (await call.json("GET", "/ping"))[0] == 200
    status, small = await call.run(agent, "10")
    assert (status, small["status"]) == (200, "completed")
    assert_idle(call)


async def test_max_run_log_bytes_refuses_one_large_message(make_call: Any) -> None:
    agents = AgentRegistry()

    @agents.agent()
    async def big(input: list[Message]) -> AsyncIterator[Message]:
        yield Message(parts=[{"content": "y" * 5000}])

    call = make_call(agents, max_run_log_bytes=4000)
    _, run = await call.run("big")
    assert run["status"] == "failed" and run["error"]["data"] == {"reason": "max_run_log_bytes"}
    assert run["output"] == []
    assert_idle(call)


# the active runs' memory budget ----------------------------------------------------------------------
@pytest.fixture
async def budget_call() -> AsyncIterator[Any]:
    """A service whose active runs have a small budget, and whose store keeps what they leave (its
    own byte bound is another test's subject)."""
    services: list[ACPService] = []

    def make(registry: AgentRegistry, budget: int) -> Call:
        store = MemoryStore(max_retained_bytes=64 * 1024 * 1024)
        service = ACPService(registry, store=store, settings=Settings(max_retained_bytes=budget))
        services.append(service)
        return Call(service)

    yield make
    for service in services:
        await service.aclose()


def holding_registry(gate: asyncio.Event) -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    async def hold(input: list[Message]) -> AsyncIterator[str | None]:
        """Writes as many bytes as asked for, then holds them until the test opens the gate."""
        yield "z" * int(input[0].parts[0].content or "0")
        yield None  # the message is complete: it is in the log three times now
        await gate.wait()

    return agents


async def test_max_retained_bytes_refuses_new_runs_while_active_runs_hold_the_budget(
    budget_call: Any,
) -> None:
    gate = asyncio.Event()
    budget = 5000
    call = budget_call(holding_registry(gate), budget)
    engine = call.service.engine
    _, holder = await call.json("POST", "/runs", run_body("hold", "1200", mode="async"))
    with anyio.fail_after(2):
        while engine.log_bytes < 3600:
            await asyncio.sleep(0.01)
    assert engine.log_bytes <= budget  # the holder itself was let in
    # Too little room left for one more run to start.
    error = await refused(call, "hold")
    assert error["data"] == {"limit": "max_retained_bytes", "max_retained_bytes": budget}

    gate.set()
    await wait_status(call, holder["run_id"], "completed")
    gate.clear()
    assert engine.log_bytes == 0
    status, run = await call.json("POST", "/runs", run_body("hold", "1200", mode="async"))
    assert status == 202
    gate.set()
    await wait_status(call, run["run_id"], "completed")
    assert_idle(call)


async def test_a_run_that_would_go_over_the_budget_fails_and_the_others_go_on(budget_call: Any) -> None:
    gate = asyncio.Event()
    budget = 12_000
    call = budget_call(holding_registry(gate), budget)
    _, holder = await call.json("POST", "/runs", run_body("hold", "3000", mode="async"))
    await asyncio.sleep(0.05)
    status, greedy = await call.run("hold", "4000")  # under its own log cap, over what is left
    assert (status, greedy["status"]) == (200, "failed")
    assert greedy["error"] == {
        "code": "server_error",
        "message": f"the active runs' events went over {budget} bytes",
        "data": {"reason": "max_retained_bytes"},
    }
    assert call.service.engine.log_bytes <= budget
    gate.set()
    done = await wait_status(call, holder["run_id"], "completed")
    assert done["output"][0]["parts"][0]["content"] == "z" * 3000
    assert_idle(call)
