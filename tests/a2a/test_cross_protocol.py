"""One engine, two protocols: a run started over ACP is a task over A2A and the reverse; an input request
made over one protocol is answered over the other; a session is a context whichever protocol
continues it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from a2a.types.a2a_pb2 import CancelTaskRequest, GetTaskRequest, TaskState

from tests.a2a.deployments import A2ATarget
from tests.a2a.helpers import JSONRPC, client_for, poll, send, text_of, user
from tests.deployments.base import TLS

pytestmark = pytest.mark.anyio

S = TaskState


def _acp_input(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "parts": [{"content": text, "content_type": "text/plain"}]}]


async def _acp_run(a2a: A2ATarget, agent: str, text: str, mode: str = "sync", **extra: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(verify=TLS, timeout=30) as http:
        answer = await http.post(
            a2a.acp.base_url + "/runs",
            json={"agent_name": agent, "input": _acp_input(text), "mode": mode, **extra},
        )
    assert answer.status_code in (200, 202), answer.text
    run: dict[str, Any] = answer.json()
    return run


async def _acp_get(a2a: A2ATarget, run_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(verify=TLS, timeout=30) as http:
        answer = await http.get(f"{a2a.acp.base_url}/runs/{run_id}")
    assert answer.status_code == 200, answer.text
    run: dict[str, Any] = answer.json()
    return run


async def test_a_run_started_over_acp_is_a_task_over_a2a(a2a: A2ATarget) -> None:
    run = await _acp_run(a2a, "echo", "from acp")
    async with client_for(a2a.agent("echo"), JSONRPC) as client:
        task = await client.get_task(GetTaskRequest(id=run["run_id"]))
    assert task.id == run["run_id"]
    assert task.context_id == run["session_id"]
    assert task.status.state == S.TASK_STATE_COMPLETED
    assert text_of(task) == "from acp"


async def test_a_task_started_over_a2a_is_a_run_over_acp(a2a: A2ATarget) -> None:
    async with client_for(a2a.agent("echo"), JSONRPC) as client:
        [item] = await send(client, user("from a2a"))
    run = await _acp_get(a2a, item.task.id)
    assert run["agent_name"] == "echo"
    assert run["session_id"] == item.task.context_id
    assert run["status"] == "completed"
    assert run["output"][0]["parts"][0]["content"] == "from a2a"


async def test_an_input_request_made_over_acp_is_answered_over_a2a(a2a: A2ATarget) -> None:
    run = await _acp_run(a2a, "awaiter", "start")
    assert run["status"] == "awaiting"
    async with client_for(a2a.agent("awaiter"), JSONRPC) as client:
        task = await client.get_task(GetTaskRequest(id=run["run_id"]))
        assert task.status.state == S.TASK_STATE_INPUT_REQUIRED
        [answer] = await send(client, user("over a2a", task_id=run["run_id"]))
    assert answer.task.status.state == S.TASK_STATE_COMPLETED
    finished = await _acp_get(a2a, run["run_id"])
    assert finished["status"] == "completed"
    assert finished["output"][-1]["parts"][0]["content"] == "received: over a2a"


async def test_an_input_request_made_over_a2a_is_answered_over_acp(a2a: A2ATarget) -> None:
    async with client_for(a2a.agent("awaiter"), JSONRPC) as client:
        [item] = await send(client, user("start"))
        resume = {"await_resume": {"type": "message", "message": _acp_input("over acp")[0]}, "mode": "sync"}
        async with httpx.AsyncClient(verify=TLS, timeout=30) as http:
            answer = await http.post(f"{a2a.acp.base_url}/runs/{item.task.id}", json=resume)
        assert answer.status_code == 200 and answer.json()["status"] == "completed"
        task = await client.get_task(GetTaskRequest(id=item.task.id))
    assert text_of(task) == "received: over acp"


async def test_a_run_started_over_acp_is_cancelled_over_a2a(a2a: A2ATarget) -> None:
    run = await _acp_run(a2a, "slow-echo", "x", mode="async")
    async with client_for(a2a.agent("slow-echo"), JSONRPC) as client:
        task = await client.cancel_task(CancelTaskRequest(id=run["run_id"]))
        assert task.status.state == S.TASK_STATE_CANCELED
    assert (await _acp_get(a2a, run["run_id"]))["status"] == "cancelled"


async def test_a_session_of_acp_is_continued_as_a_context_of_a2a(a2a: A2ATarget) -> None:
    session = str(uuid.uuid4())
    await _acp_run(a2a, "history-echo", "first, over acp", session_id=session)
    async with client_for(a2a.agent("history-echo"), JSONRPC) as client:
        [item] = await send(client, user("then over a2a", context_id=session))
        assert item.task.context_id == session
        # history-echo yields the session's history (the ACP run's input and output), then its input.
        assert text_of(item.task) == "first, over acp" * 2 + "then over a2a"
    # And back: an ACP run of the same session sees both runs' inputs and outputs, then its input.
    run = await _acp_run(a2a, "history-echo", "last", session_id=session)
    texts = [part["content"] for message in run["output"] for part in message["parts"]]
    first, second = (
        ["first, over acp"] * 2,
        ["then over a2a", "first, over acp", "first, over acp", "then over a2a"],
    )
    assert texts == [*first, *second, "last"]


async def test_an_a2a_task_started_at_once_can_be_followed_over_acp(a2a: A2ATarget) -> None:
    async with client_for(a2a.agent("slow-echo"), JSONRPC) as client:
        [item] = await send(client, user("async"), return_immediately=True)
        task = await poll(client, item.task.id)
    assert task.status.state == S.TASK_STATE_COMPLETED
    events_url = f"{a2a.acp.base_url}/runs/{item.task.id}/events"
    async with httpx.AsyncClient(verify=TLS, timeout=30) as http:
        events = (await http.get(events_url)).json()["events"]
    assert events[0]["type"] == "run.created"
    assert events[-1]["type"] == "run.completed"
