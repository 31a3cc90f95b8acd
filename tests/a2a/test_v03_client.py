"""A2A 0.3 clients: the official client's 0.3 transport (a2a-sdk's compat JSON-RPC client, which sends
``message/send``, ``message/stream``, ``tasks/get``, ``tasks/cancel``, ``tasks/resubscribe``), and the
0.3 method names sent as deployed 0.3 clients send them, without an ``A2A-Version`` header, every
answer validated with the SDK's 0.3 models."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from a2a.compat.v0_3 import types as v03
from a2a.types.a2a_pb2 import CancelTaskRequest, GetTaskRequest, SubscribeToTaskRequest, TaskState
from a2a.utils.errors import TaskNotCancelableError, TaskNotFoundError

from tests.a2a.deployments import A2ATarget
from tests.a2a.helpers import JSONRPC, client_for, send, strict_v03, text_of, user
from tests.deployments.base import TLS, parse_sse

pytestmark = pytest.mark.anyio

S = TaskState


async def test_send_and_get(a2a: A2ATarget) -> None:
    async with client_for(a2a.agent("echo"), JSONRPC, version="0.3") as client:
        [item] = await send(client, user("old client"))
        assert item.task.status.state == S.TASK_STATE_COMPLETED
        assert text_of(item.task) == "old client"
        task = await client.get_task(GetTaskRequest(id=item.task.id))
        assert text_of(task) == "old client"
        with pytest.raises(TaskNotFoundError):
            await client.get_task(GetTaskRequest(id=str(uuid.uuid4())))


async def test_stream(a2a: A2ATarget) -> None:
    async with client_for(a2a.agent("chunks"), JSONRPC, streaming=True, version="0.3") as client:
        items = await send(client, user("3"))
    assert items[0].task.status.state == S.TASK_STATE_SUBMITTED
    assert items[-1].status_update.status.state == S.TASK_STATE_COMPLETED
    chunks = [i.artifact_update.artifact.parts[0].text for i in items if i.HasField("artifact_update")]
    assert "".join(chunks) == "0 1 2 "


async def test_input_required_and_its_answer(a2a: A2ATarget) -> None:
    async with client_for(a2a.agent("awaiter"), JSONRPC, version="0.3") as client:
        [item] = await send(client, user("start"))
        assert item.task.status.state == S.TASK_STATE_INPUT_REQUIRED
        [answer] = await send(client, user("ok", task_id=item.task.id, context_id=item.task.context_id))
    assert answer.task.status.state == S.TASK_STATE_COMPLETED
    assert text_of(answer.task) == "received: ok"


async def test_cancel_and_resubscribe(a2a: A2ATarget) -> None:
    async with client_for(a2a.agent("slow-echo"), JSONRPC, version="0.3") as client:
        [item] = await send(client, user("a"), return_immediately=True)
        task = await client.cancel_task(CancelTaskRequest(id=item.task.id))
        assert task.status.state == S.TASK_STATE_CANCELED
        with pytest.raises(TaskNotCancelableError):
            await client.cancel_task(CancelTaskRequest(id=item.task.id))
        [running] = await send(client, user("b"), return_immediately=True)
    async with client_for(a2a.agent("slow-echo"), JSONRPC, streaming=True, version="0.3") as client:
        await asyncio.sleep(0.1)
        items = [event async for event in client.subscribe(SubscribeToTaskRequest(id=running.task.id))]
    assert items[0].task.id == running.task.id
    assert items[-1].status_update.status.state == S.TASK_STATE_COMPLETED


async def _rpc(url: str, method: str, params: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    body = {"jsonrpc": "2.0", "id": "r1", "method": method, "params": params}
    async with httpx.AsyncClient(verify=TLS, timeout=30) as http:
        answer = await http.post(url, json=body, headers=headers or {})
    assert answer.status_code == 200
    return answer


def _message(text: str, **ids: str) -> dict[str, Any]:
    return {
        "kind": "message",
        "messageId": str(uuid.uuid4()),
        "role": "user",
        "parts": [{"kind": "text", "text": text}],
        **ids,
    }


async def test_v03_names_without_a_header_answer_in_v03(a2a: A2ATarget) -> None:
    url = a2a.agent("artifact-producer")
    answer = await _rpc(url, "message/send", {"message": _message("hi")})
    parsed = strict_v03(answer.json(), v03.SendMessageSuccessResponse)
    task = parsed.result
    assert isinstance(task, v03.Task) and task.status.state == v03.TaskState.completed
    kinds = sorted(part.root.kind for artifact in task.artifacts or [] for part in artifact.parts)
    assert kinds == ["data", "file", "text", "text"]
    got = await _rpc(url, "tasks/get", {"id": task.id})
    assert strict_v03(got.json(), v03.GetTaskSuccessResponse).result.id == task.id
    missing = (await _rpc(url, "tasks/get", {"id": str(uuid.uuid4())})).json()
    assert missing["error"]["code"] == -32001 and missing["id"] == "r1"
    strict_v03(missing, v03.JSONRPCErrorResponse)


async def test_v03_stream_items_and_final(a2a: A2ATarget) -> None:
    body = {"jsonrpc": "2.0", "id": 7, "method": "message/stream", "params": {"message": _message("2")}}
    async with httpx.AsyncClient(verify=TLS, timeout=30) as http:
        answer = await http.post(a2a.agent("chunks"), json=body)
    assert answer.headers["content-type"].startswith("text/event-stream")
    events, _ = parse_sse(answer.content)
    results = [strict_v03(event.data, v03.SendStreamingMessageSuccessResponse).result for event in events]
    assert isinstance(results[0], v03.Task)
    updates = [r for r in results if isinstance(r, v03.TaskStatusUpdateEvent)]
    assert [u.final for u in updates] == [False, True]
    assert updates[-1].status.state == v03.TaskState.completed
    assert all(event.data["id"] == 7 for event in events)


async def test_v03_file_and_data_parts_reach_the_agent(a2a: A2ATarget) -> None:
    parts = [
        {"kind": "text", "text": "t"},
        {"kind": "data", "data": {"a": 1}},
        {"kind": "file", "file": {"bytes": "aGk=", "mimeType": "text/plain", "name": "f.txt"}},
        {"kind": "file", "file": {"uri": "https://example.org/y.png", "mimeType": "image/png"}},
    ]
    message = {"kind": "message", "messageId": "m", "role": "user", "parts": parts}
    answer = await _rpc(a2a.agent("echo"), "message/send", {"message": message})
    task = strict_v03(answer.json(), v03.SendMessageSuccessResponse).result
    assert isinstance(task, v03.Task)
    echoed = [part.root for artifact in task.artifacts or [] for part in artifact.parts]
    assert echoed[0] == v03.TextPart(text="t")
    assert echoed[1] == v03.DataPart(data={"a": 1})
    files = [part for part in echoed if isinstance(part, v03.FilePart)]
    # The named part is an artifact of its own, after the artifact of the unnamed parts.
    assert [f.file.name for f in files] == [None, "f.txt"]
    assert isinstance(files[1].file, v03.FileWithBytes) and files[1].file.bytes == "aGk="
    assert isinstance(files[0].file, v03.FileWithUri) and files[0].file.uri == "https://example.org/y.png"


async def test_a_header_naming_the_other_dialect_is_refused(a2a: A2ATarget) -> None:
    refused = await _rpc(
        a2a.agent("echo"), "message/send", {"message": _message("x")}, {"A2A-Version": "1.0"}
    )
    assert refused.json()["error"]["code"] == -32009
    fine = await _rpc(a2a.agent("echo"), "message/send", {"message": _message("x")}, {"A2A-Version": "0.3"})
    task = strict_v03(fine.json(), v03.SendMessageSuccessResponse).result
    assert isinstance(task, v03.Task) and task.status.state == v03.TaskState.completed
