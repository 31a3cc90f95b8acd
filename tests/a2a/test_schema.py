"""Answers valid against A2A 1.0's published JSON schema (tests/a2a/schema/a2a-v1.0.json).

Every 1.0 client of the suite checks what it receives (tests/a2a/helpers.py's ``client_for``); here the
main flows run over both bindings and the test counts that each kind of answer was indeed checked, and
the check itself is shown to catch what is not valid.
"""

from __future__ import annotations

from collections import Counter

import pytest
from a2a.types.a2a_pb2 import CancelTaskRequest, GetTaskRequest, ListTasksRequest, SubscribeToTaskRequest

from tests.a2a.deployments import A2ATarget
from tests.a2a.helpers import JSONRPC, REST, client_for, send, user
from tests.a2a.schema import SchemaCheckingTransport, schema_errors

BINDINGS = [pytest.param(JSONRPC, id="jsonrpc"), pytest.param(REST, id="http-json")]


@pytest.mark.anyio
@pytest.mark.parametrize("binding", BINDINGS)
async def test_the_main_flows_answer_valid_json(a2a: A2ATarget, binding: str) -> None:
    checked: Counter[str] = Counter()

    def checker() -> SchemaCheckingTransport:
        made = SchemaCheckingTransport()
        checkers.append(made)
        return made

    checkers: list[SchemaCheckingTransport] = []
    # Send, blocking and not; get; list; cancel; input required and its answer; parts of every kind.
    async with client_for(a2a.agent("artifact-producer"), binding, checker=checker()) as client:
        [produced] = await send(client, user("go"))
        await client.get_task(GetTaskRequest(id=produced.task.id))
        await client.list_tasks(ListTasksRequest(context_id=produced.task.context_id, include_artifacts=True))
    async with client_for(a2a.agent("awaiter"), binding, checker=checker()) as client:
        [asked] = await send(client, user("start"))
        await send(client, user("yes", task_id=asked.task.id))
    async with client_for(a2a.agent("failer"), binding, checker=checker()) as client:
        await send(client, user("?"))
    async with client_for(a2a.agent("slow-echo"), binding, checker=checker()) as client:
        [running] = await send(client, user("a b"), return_immediately=True)
        await client.cancel_task(CancelTaskRequest(id=running.task.id))
        [followed] = await send(client, user("c"), return_immediately=True)
    # Streams: a message streamed, a task followed.
    async with client_for(a2a.agent("chunks"), binding, streaming=True, checker=checker()) as client:
        await send(client, user("3"))
    async with client_for(a2a.agent("slow-echo"), binding, streaming=True, checker=checker()) as client:
        _ = [item async for item in client.subscribe(SubscribeToTaskRequest(id=followed.task.id))]

    for made in checkers:
        assert made.errors == []
        checked.update(made.checked)
    assert checked["AgentCard"] == len(checkers)
    assert checked["SendMessageResponse"] >= 6
    assert checked["Task"] >= 2  # GetTask and CancelTask
    assert checked["ListTasksResponse"] == 1
    assert checked["StreamResponse"] >= 6  # the task, its updates, its chunks


def test_the_check_catches_what_is_not_valid() -> None:
    task = {"id": "t", "contextId": "c", "status": {"state": "TASK_STATE_COMPLETED"}}
    assert schema_errors(task, "Task") == []
    assert schema_errors({"task": task}, "SendMessageResponse") == []
    wrong = [
        ({**task, "kind": "task"}, "Task"),  # a 0.3 field
        ({**task, "status": {"state": "completed"}}, "Task"),  # a 0.3 state
        ({**task, "status": {"state": "TASK_STATE_COMPLETED", "timestamp": "today"}}, "Task"),
        ({**task, "artifacts": [{"artifactId": "a", "parts": [{"raw": "-_"}]}]}, "Task"),  # URL-safe base64
        ({"task": task, "final": True}, "StreamResponse"),
        ({"tasks": [], "nextPageToken": None}, "ListTasksResponse"),
    ]
    for data, message in wrong:
        assert schema_errors(data, message), data
