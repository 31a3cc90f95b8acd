"""The official A2A Python client (a2a-sdk 1.3, A2A 1.0) against every A2A deployment, over JSON-RPC and
HTTP+JSON: discovery, send (blocking and not), stream, get, list, cancel, subscribe, input-required and
its answer, contexts across tasks, and errors as the client maps them."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from a2a.client.card_resolver import A2ACardResolver
from a2a.client.errors import A2AClientError
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    SubscribeToTaskRequest,
    TaskState,
)
from a2a.utils.errors import (
    InvalidParamsError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]

from tests.a2a.deployments import A2ATarget
from tests.a2a.helpers import JSONRPC, REST, client_for, poll, send, text_of, user
from tests.deployments.base import TLS

pytestmark = pytest.mark.anyio

BINDINGS = [pytest.param(JSONRPC, id="jsonrpc"), pytest.param(REST, id="http-json")]
S = TaskState


# discovery ----------------------------------------------------------------------------------------
async def test_every_agent_has_a_card_with_its_interfaces(a2a: A2ATarget) -> None:
    async with httpx.AsyncClient(verify=TLS, timeout=30) as http:
        card = await A2ACardResolver(http, a2a.agent("mime-types")).get_agent_card()
    assert card.name == "mime-types"
    assert card.description
    assert card.capabilities.streaming is True
    assert card.capabilities.push_notifications is False
    assert list(card.default_input_modes) == ["text/plain", "application/json"]
    assert "text/html" in card.default_output_modes
    interfaces = {(i.protocol_binding, i.protocol_version, i.url) for i in card.supported_interfaces}
    url = a2a.agent("mime-types")
    assert interfaces == {(JSONRPC, "1.0", url), (REST, "1.0", url), (JSONRPC, "0.3", url)}
    assert card.skills and all(skill.tags for skill in card.skills)


async def test_an_unknown_agent_has_no_card(a2a: A2ATarget) -> None:
    async with httpx.AsyncClient(verify=TLS, timeout=30) as http:
        answer = await http.get(a2a.agent("no-such-agent") + "/.well-known/agent-card.json")
    assert answer.status_code == 404
    assert answer.json()["error"]["status"] == "NOT_FOUND"


# send ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("binding", BINDINGS)
async def test_send_blocks_until_the_task_ends(a2a: A2ATarget, binding: str) -> None:
    async with client_for(a2a.agent("echo"), binding) as client:
        [item] = await send(client, user("hello"))
    task = item.task
    assert task.status.state == S.TASK_STATE_COMPLETED
    assert text_of(task) == "hello"
    assert task.context_id and task.id
    assert [m.parts[0].text for m in task.history] == ["hello"]


@pytest.mark.parametrize("binding", BINDINGS)
async def test_send_returning_at_once_then_get(a2a: A2ATarget, binding: str) -> None:
    async with client_for(a2a.agent("slow-echo"), binding) as client:
        [item] = await send(client, user("later"), return_immediately=True)
        assert item.task.status.state in (S.TASK_STATE_SUBMITTED, S.TASK_STATE_WORKING)
        task = await poll(client, item.task.id)
    assert task.status.state == S.TASK_STATE_COMPLETED
    assert text_of(task) == "later"


@pytest.mark.parametrize("binding", BINDINGS)
async def test_stream_gives_the_task_then_its_updates(a2a: A2ATarget, binding: str) -> None:
    async with client_for(a2a.agent("chunks"), binding, streaming=True) as client:
        items = await send(client, user("5"))
    assert items[0].HasField("task")
    assert items[0].task.status.state == S.TASK_STATE_SUBMITTED
    states = [i.status_update.status.state for i in items if i.HasField("status_update")]
    assert states[0] == S.TASK_STATE_WORKING and states[-1] == S.TASK_STATE_COMPLETED
    chunks = [i.artifact_update for i in items if i.HasField("artifact_update")]
    assert "".join(c.artifact.parts[0].text for c in chunks) == "0 1 2 3 4 "
    assert len({c.artifact.artifact_id for c in chunks}) == 1
    assert [c.append for c in chunks] == [False, True, True, True, True]
    # What the stream built is what GetTask answers.
    async with client_for(a2a.agent("chunks"), binding) as client:
        task = await client.get_task(GetTaskRequest(id=items[0].task.id))
    assert text_of(task) == "0 1 2 3 4 "
    assert task.artifacts[0].artifact_id == chunks[0].artifact.artifact_id


@pytest.mark.parametrize("binding", BINDINGS)
async def test_parts_and_named_artifacts(a2a: A2ATarget, binding: str) -> None:
    async with client_for(a2a.agent("artifact-producer"), binding) as client:
        [item] = await send(client, user("go"))
    artifacts = {artifact.name: artifact for artifact in item.task.artifacts}
    assert artifacts[""].parts[0].text == "Processing with artifacts"
    assert artifacts["text-result.txt"].parts[0].text == "This is a text artifact result"
    data = artifacts["data.json"].parts[0]
    assert data.HasField("data") and data.media_type == "application/json"
    assert MessageToDict(data.data) == {"results": [1, 2, 3], "status": "complete"}
    image = artifacts["image.png"].parts[0]
    assert image.HasField("raw") and image.media_type == "image/png" and image.raw.startswith(b"\x89PNG")


@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_failing_agent_fails_its_task_with_the_error(a2a: A2ATarget, binding: str) -> None:
    async with client_for(a2a.agent("failer"), binding) as client:
        [item] = await send(client, user("?"))
    assert item.task.status.state == S.TASK_STATE_FAILED
    assert item.task.status.message.parts[0].text == "Wrong question buddy!"


# input required ---------------------------------------------------------------------------------
@pytest.mark.parametrize("binding", BINDINGS)
async def test_input_required_then_the_answer_resumes_the_task(a2a: A2ATarget, binding: str) -> None:
    async with client_for(a2a.agent("awaiter"), binding) as client:
        [item] = await send(client, user("start"))
        task = item.task
        assert task.status.state == S.TASK_STATE_INPUT_REQUIRED
        [answer] = await send(client, user("42", task_id=task.id, context_id=task.context_id))
        assert answer.task.id == task.id
        assert answer.task.status.state == S.TASK_STATE_COMPLETED
        assert text_of(answer.task) == "received: 42"
        # An ended task takes no more messages.
        with pytest.raises(UnsupportedOperationError):
            await send(client, user("again", task_id=task.id))


@pytest.mark.parametrize("binding", BINDINGS)
async def test_input_required_streamed(a2a: A2ATarget, binding: str) -> None:
    async with client_for(a2a.agent("awaiter"), binding, streaming=True) as client:
        first = await send(client, user("start"))
        task_id = first[0].task.id
        assert first[-1].status_update.status.state == S.TASK_STATE_INPUT_REQUIRED
        second = await send(client, user("yes", task_id=task_id))
    assert second[0].task.id == task_id  # the task as it stands, then what follows
    assert second[-1].status_update.status.state == S.TASK_STATE_COMPLETED
    texts = [i.artifact_update.artifact.parts[0].text for i in second if i.HasField("artifact_update")]
    assert texts == ["received: yes"]


async def test_a_message_to_a_working_task_is_refused(a2a: A2ATarget) -> None:
    async with client_for(a2a.agent("slow-echo"), JSONRPC) as client:
        [item] = await send(client, user("busy"), return_immediately=True)
        with pytest.raises(UnsupportedOperationError):
            await send(client, user("more", task_id=item.task.id))
        await client.cancel_task(CancelTaskRequest(id=item.task.id))


# contexts -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_context_is_a_session_across_tasks(a2a: A2ATarget, binding: str) -> None:
    async with client_for(a2a.agent("sessioner"), binding) as client:
        [first] = await send(client, user("a"))
        assert text_of(first.task) == first.task.context_id  # the run's session is the context
        [second] = await send(client, user("b", context_id=first.task.context_id))
    assert second.task.id != first.task.id
    assert second.task.context_id == first.task.context_id == text_of(second.task)


async def test_history_of_a_context_is_the_sessions(a2a: A2ATarget) -> None:
    async with client_for(a2a.agent("history-echo"), JSONRPC) as client:
        [first] = await send(client, user("one"))
        [second] = await send(client, user("two", context_id=first.task.context_id))
    # history-echo yields the session's history (the first task's input and output), then the input.
    assert text_of(second.task) == "one" + "one" + "two"


async def test_a_context_id_the_server_did_not_give_is_refused(a2a: A2ATarget) -> None:
    async with client_for(a2a.agent("echo"), JSONRPC) as client:
        with pytest.raises(InvalidParamsError):
            await send(client, user("x", context_id="not-a-uuid"))


# get, list ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("binding", BINDINGS)
async def test_get_an_unknown_task(a2a: A2ATarget, binding: str) -> None:
    async with client_for(a2a.agent("echo"), binding) as client:
        with pytest.raises(TaskNotFoundError):
            await client.get_task(GetTaskRequest(id="5d0c4a52-0000-4000-8000-000000000000"))
        with pytest.raises(TaskNotFoundError):
            await client.get_task(GetTaskRequest(id="not-even-a-uuid"))


async def test_a_task_is_its_agents_only(a2a: A2ATarget) -> None:
    async with client_for(a2a.agent("echo"), JSONRPC) as client:
        [item] = await send(client, user("mine"))
    async with client_for(a2a.agent("sync-echo"), JSONRPC) as other:
        with pytest.raises(TaskNotFoundError):
            await other.get_task(GetTaskRequest(id=item.task.id))


@pytest.mark.parametrize("binding", BINDINGS)
async def test_list_the_tasks_of_a_context_page_by_page(a2a: A2ATarget, binding: str) -> None:
    async with client_for(a2a.agent("echo"), binding) as client:
        [first] = await send(client, user("1"))
        context = first.task.context_id
        ids = [first.task.id]
        for text in ("2", "3"):
            [item] = await send(client, user(text, context_id=context))
            ids.append(item.task.id)
        page = await client.list_tasks(ListTasksRequest(context_id=context, page_size=2))
        assert page.total_size == 3 and page.page_size == 2
        assert [task.id for task in page.tasks] == ids[::-1][:2]  # newest first
        assert page.next_page_token
        assert not any(task.artifacts for task in page.tasks)  # unless asked for
        token = page.next_page_token
        rest = await client.list_tasks(
            ListTasksRequest(context_id=context, page_size=2, page_token=token, include_artifacts=True)
        )
        assert [task.id for task in rest.tasks] == [ids[0]]
        assert rest.next_page_token == ""
        assert text_of(rest.tasks[0]) == "1"
        done = await client.list_tasks(ListTasksRequest(context_id=context, status=S.TASK_STATE_CANCELED))
        assert list(done.tasks) == [] and done.total_size == 0
        with pytest.raises(InvalidParamsError):
            await client.list_tasks(ListTasksRequest(context_id=context, page_size=1000))


async def test_listing_without_a_context_needs_an_identified_caller(a2a: A2ATarget) -> None:
    async with client_for(a2a.agent("echo"), JSONRPC) as client:
        with pytest.raises(UnsupportedOperationError):
            await client.list_tasks(ListTasksRequest())


# cancel, subscribe --------------------------------------------------------------------------------
@pytest.mark.parametrize("binding", BINDINGS)
async def test_cancel_a_running_task(a2a: A2ATarget, binding: str) -> None:
    async with client_for(a2a.agent("slow-echo"), binding) as client:
        [item] = await send(client, user("a"), return_immediately=True)
        task = await client.cancel_task(CancelTaskRequest(id=item.task.id))
        assert task.status.state == S.TASK_STATE_CANCELED
        with pytest.raises(TaskNotCancelableError):
            await client.cancel_task(CancelTaskRequest(id=item.task.id))
        with pytest.raises(TaskNotFoundError):
            await client.cancel_task(CancelTaskRequest(id="5d0c4a52-0000-4000-8000-000000000000"))


@pytest.mark.parametrize("binding", BINDINGS)
async def test_subscribe_to_a_running_task(a2a: A2ATarget, binding: str) -> None:
    async with client_for(a2a.agent("slow-echo"), binding) as sender:
        [item] = await send(sender, user("x"), return_immediately=True)
    async with client_for(a2a.agent("slow-echo"), binding, streaming=True) as client:
        await asyncio.sleep(0.1)
        items = [event async for event in client.subscribe(SubscribeToTaskRequest(id=item.task.id))]
        assert items[0].task.id == item.task.id
        assert items[-1].status_update.status.state == S.TASK_STATE_COMPLETED
        with pytest.raises(UnsupportedOperationError):  # an ended task has nothing to follow
            _ = [event async for event in client.subscribe(SubscribeToTaskRequest(id=item.task.id))]


async def test_push_notifications_are_not_offered(a2a: A2ATarget) -> None:
    from a2a.types.a2a_pb2 import TaskPushNotificationConfig
    from a2a.utils.errors import PushNotificationNotSupportedError

    async with client_for(a2a.agent("echo"), JSONRPC) as client:
        with pytest.raises((PushNotificationNotSupportedError, A2AClientError)):
            await client.create_task_push_notification_config(
                TaskPushNotificationConfig(task_id="x", url="https://example.org/hook")
            )
