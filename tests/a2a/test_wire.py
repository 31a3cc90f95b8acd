"""What the official clients insist on, checked on the wire: JSON-RPC errors with HTTP 200 and their
codes, the ``A2A-Version`` header, HTTP+JSON errors as ``google.rpc.Status`` with ``ErrorInfo`` reasons,
list answers with their paging fields, every 1.0 answer valid against the 1.0 protobuf (strictly: no
unknown field, every REQUIRED field), and bad input answered with an A2A error, never a 5xx."""

from __future__ import annotations

import uuid
from typing import Any

import anyio.to_thread
import httpx
import pytest
from a2a.types.a2a_pb2 import ListTasksResponse, SendMessageResponse, StreamResponse, Task
from google.protobuf.json_format import ParseDict  # type: ignore[import-untyped]

from tests.a2a.deployments import A2ATarget
from tests.a2a.helpers import card_v1, strict_v1
from tests.deployments.base import TLS, parse_sse

pytestmark = pytest.mark.anyio

V1 = {"A2A-Version": "1.0"}
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


def _message(text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": text}], **extra}


async def _post(url: str, body: Any, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(verify=TLS, timeout=60) as http:
        if isinstance(body, (bytes, str)):
            return await http.post(
                url, content=body, headers={"content-type": "application/json", **(headers or {})}
            )
        return await http.post(url, json=body, headers=headers or {}, **kwargs)


async def _rpc(url: str, method: str, params: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    answer = await _post(
        url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, {**V1, **(headers or {})}
    )
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


def _reason(error: dict[str, Any]) -> str:
    [info] = [detail for detail in error["data"] if detail["@type"] == ERROR_INFO]
    assert info["domain"] == "a2a-protocol.org"
    return str(info["reason"])


# valid answers --------------------------------------------------------------------------------------
async def test_answers_are_valid_v1(a2a: A2ATarget) -> None:
    url = a2a.agent("artifact-producer")
    async with httpx.AsyncClient(verify=TLS, timeout=30) as http:
        card = (await http.get(url + "/.well-known/agent-card.json")).json()
    card_v1(card)
    assert card["url"] == url and card["preferredTransport"] == "JSONRPC"  # for 0.3 clients
    sent = await _rpc(url, "SendMessage", {"message": _message()})
    response = strict_v1(sent["result"], SendMessageResponse)
    task_id, context_id = response.task.id, response.task.context_id
    got = await _rpc(url, "GetTask", {"id": task_id})
    strict_v1(got["result"], Task)
    listed = await _rpc(url, "ListTasks", {"contextId": context_id, "includeArtifacts": True})
    assert set(listed["result"]) == {"tasks", "nextPageToken", "pageSize", "totalSize"}
    for task in listed["result"]["tasks"]:
        strict_v1(task, Task)
    answer = await _post(
        url,
        {"jsonrpc": "2.0", "id": "s", "method": "SendStreamingMessage", "params": {"message": _message()}},
        V1,
    )
    events, _ = parse_sse(answer.content)
    assert len(events) >= 4
    for event in events:
        assert event.data["id"] == "s"
        strict_v1(event.data["result"], StreamResponse)


async def test_rest_answers_are_valid_v1(a2a: A2ATarget) -> None:
    url = a2a.agent("echo")
    async with httpx.AsyncClient(verify=TLS, timeout=30) as http:
        sent = await http.post(url + "/message:send", json={"message": _message()}, headers=V1)
        assert sent.status_code == 200 and sent.headers["content-type"] == "application/a2a+json"
        task = strict_v1(sent.json(), SendMessageResponse).task
        got = await http.get(f"{url}/tasks/{task.id}", params={"historyLength": 0})
        strict_v1(got.json(), Task)
        streamed = await http.post(url + "/message:stream", json={"message": _message()})  # no header: 1.0
        for event in parse_sse(streamed.content)[0]:
            strict_v1(event.data, StreamResponse)


async def test_list_answers_always_carry_their_paging_fields(a2a: A2ATarget) -> None:
    empty_context = str(uuid.uuid4())
    async with httpx.AsyncClient(verify=TLS, timeout=30) as http:
        rest = await http.get(a2a.agent("echo") + "/tasks", params={"contextId": empty_context})
    assert rest.status_code == 200
    assert rest.json() == {"tasks": [], "nextPageToken": "", "pageSize": 50, "totalSize": 0}
    rpc = await _rpc(a2a.agent("echo"), "ListTasks", {"contextId": empty_context, "pageSize": 7})
    assert rpc["result"] == {"tasks": [], "nextPageToken": "", "pageSize": 7, "totalSize": 0}
    # (The strict check of REQUIRED fields would call an empty list or token missing: parse without it.)
    ParseDict(rpc["result"], ListTasksResponse())


# JSON-RPC errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param(b"{not json", -32700, id="parse-error"),
        pytest.param(b"[]", -32600, id="batch"),
        pytest.param(b'"text"', -32600, id="not-an-object"),
        pytest.param(b'{"id": 1, "method": "GetTask", "params": {"id": "x"}}', -32600, id="no-jsonrpc"),
        pytest.param(b'{"jsonrpc": "2.0", "id": true, "method": "GetTask"}', -32600, id="bool-id"),
        pytest.param(b'{"jsonrpc": "2.0", "id": 1}', -32600, id="no-method"),
        pytest.param(b'{"jsonrpc": "2.0", "id": 1, "method": "NoSuchMethod"}', -32601, id="unknown-method"),
        pytest.param(
            b'{"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": []}', -32600, id="params-list"
        ),
        pytest.param(
            b'{"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {}}', -32602, id="no-task-id"
        ),
        pytest.param(
            b'{"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {"parts": []}}}',
            -32602,
            id="bad-message",
        ),
        pytest.param(
            b'{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":'
            b'{"messageId":"m","role":"ROLE_USER","parts":[{"text":"a","url":"http://x"}]}}}',
            -32602,
            id="two-contents",
        ),
        pytest.param(
            b'{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":'
            b'{"messageId":"m","role":"ROLE_USER","parts":[{"url":"not a url"}]}}}',
            -32602,
            id="bad-url",
        ),
        pytest.param(
            b'{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":'
            b'{"messageId":"m","role":"ROLE_USER","parts":[{"raw":"***"}]}}}',
            -32602,
            id="bad-base64",
        ),
        pytest.param(
            b'{"jsonrpc": "2.0", "id": 1, "method": "CreateTaskPushNotificationConfig", "params": {}}',
            -32003,
            id="push",
        ),
    ],
)
async def test_jsonrpc_errors_travel_with_http_200(a2a: A2ATarget, body: bytes, code: int) -> None:
    answer = await _post(a2a.agent("echo"), body, V1)
    assert answer.status_code == 200
    data = answer.json()
    assert data["jsonrpc"] == "2.0" and data["error"]["code"] == code and data["error"]["message"]
    assert "result" not in data
    _reason(data["error"])


async def test_task_errors_carry_their_reason(a2a: A2ATarget) -> None:
    missing = await _rpc(a2a.agent("echo"), "GetTask", {"id": str(uuid.uuid4())})
    assert missing["error"]["code"] == -32001 and _reason(missing["error"]) == "TASK_NOT_FOUND"
    done = (await _rpc(a2a.agent("echo"), "SendMessage", {"message": _message()}))["result"]["task"]
    cancel = await _rpc(a2a.agent("echo"), "CancelTask", {"id": done["id"]})
    assert cancel["error"]["code"] == -32002 and _reason(cancel["error"]) == "TASK_NOT_CANCELABLE"
    again = await _rpc(a2a.agent("echo"), "SendMessage", {"message": _message(taskId=done["id"])})
    assert again["error"]["code"] == -32004 and _reason(again["error"]) == "UNSUPPORTED_OPERATION"
    stream = await _post(
        a2a.agent("echo"),
        {"jsonrpc": "2.0", "id": 2, "method": "SubscribeToTask", "params": {"id": done["id"]}},
        V1,
    )
    assert stream.headers["content-type"].startswith("application/json")  # refused before any stream
    assert stream.json()["error"]["code"] == -32004


@pytest.mark.parametrize(
    ("method", "header", "code"),
    [
        pytest.param("GetTask", "2.0", -32009, id="unknown-version"),
        pytest.param("GetTask", "0.3", -32009, id="v1-method-v03-header"),
        pytest.param("tasks/get", "1.0", -32009, id="v03-method-v1-header"),
        pytest.param("GetTask", "1.0.1", -32001, id="patch-version-is-1.0"),
        pytest.param("tasks/get", "0.3.0", -32001, id="patch-version-is-0.3"),
    ],
)
async def test_the_version_header_picks_the_dialect(
    a2a: A2ATarget, method: str, header: str, code: int
) -> None:
    answer = await _post(
        a2a.agent("echo"),
        {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"id": str(uuid.uuid4())}},
        {"A2A-Version": header},
    )
    assert answer.status_code == 200
    assert answer.json()["error"]["code"] == code


async def test_v1_names_without_a_header_are_taken_as_v1(a2a: A2ATarget) -> None:
    answer = await _post(
        a2a.agent("echo"),
        {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": _message()}},
    )
    strict_v1(answer.json()["result"], SendMessageResponse)


async def test_limits_are_a2a_errors(a2a: A2ATarget) -> None:
    parts = [{"text": "x"}] * 1001
    over = await _rpc(a2a.agent("echo"), "SendMessage", {"message": {**_message(), "parts": parts}})
    assert over["error"]["code"] == -32602 and "max_input_parts" in over["error"]["message"]


def _post_whole(url: str, body: bytes) -> httpx.Response:
    # A blocking client, as the ACP contract suite posts a body over the limit: a server may answer
    # before it has read it all and close the connection (Django under ASGI does).
    with httpx.Client(verify=TLS, timeout=60) as http:
        return http.post(url, content=body, headers={"content-type": "application/json", **V1})


async def test_a_body_over_max_body_size(a2a: A2ATarget) -> None:
    big = b'{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"pad":"' + b"x" * (
        4 * 1024 * 1024 + 1024
    )
    big += b'"}}'
    rpc = await anyio.to_thread.run_sync(_post_whole, a2a.agent("echo"), big)
    assert rpc.status_code == 200 and rpc.json()["error"]["code"] == -32600
    rest = await anyio.to_thread.run_sync(_post_whole, a2a.agent("echo") + "/message:send", big)
    assert rest.status_code == 413 and rest.json()["error"]["details"][0]["reason"] == "INVALID_REQUEST"


async def test_a_body_that_is_not_json_is_refused(a2a: A2ATarget) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    async with httpx.AsyncClient(verify=TLS, timeout=30) as http:
        rpc = await http.post(a2a.agent("echo"), content=b"a=1", headers=form)
        rest = await http.post(a2a.agent("echo") + "/message:send", content=b"a=1", headers=form)
    assert rpc.status_code == 200 and rpc.json()["error"]["code"] == -32600
    assert rest.status_code == 415


# HTTP+JSON errors -----------------------------------------------------------------------------------
async def test_rest_errors_are_status_with_error_info(a2a: A2ATarget) -> None:
    url = a2a.agent("echo")
    async with httpx.AsyncClient(verify=TLS, timeout=30) as http:
        missing = await http.get(f"{url}/tasks/{uuid.uuid4()}")
        bad = await http.post(url + "/message:send", json={"message": {"parts": "nope"}})
        not_json = await http.post(
            url + "/message:send", content=b"{oops", headers={"content-type": "application/json"}
        )
        wrong_method = await http.delete(f"{url}/tasks/{uuid.uuid4()}")
        no_path = await http.get(url + "/nothing-here")
        old = await http.get(f"{url}/tasks/{uuid.uuid4()}", headers={"A2A-Version": "0.3"})
        page = await http.get(url + "/tasks", params={"contextId": str(uuid.uuid4()), "pageSize": "many"})
    expected = [
        (missing, 404, "NOT_FOUND", "TASK_NOT_FOUND"),
        (bad, 400, "INVALID_ARGUMENT", "INVALID_PARAMS"),
        (not_json, 400, "INVALID_ARGUMENT", "INVALID_REQUEST"),
        (wrong_method, 405, "UNIMPLEMENTED", "METHOD_NOT_FOUND"),
        (no_path, 404, "NOT_FOUND", "NOT_FOUND"),
        (old, 400, "FAILED_PRECONDITION", "VERSION_NOT_SUPPORTED"),
        (page, 400, "INVALID_ARGUMENT", "INVALID_PARAMS"),
    ]
    for answer, status, grpc_status, reason in expected:
        assert answer.status_code == status, answer.text
        error = answer.json()["error"]
        assert error["code"] == status and error["status"] == grpc_status and error["message"]
        assert error["details"][0]["@type"] == ERROR_INFO and error["details"][0]["reason"] == reason
    assert wrong_method.headers["allow"] == "GET"


@pytest.mark.parametrize(
    "body",
    [
        b"null",
        b"0",
        b'{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":null}}',
        b'{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"m","role":7,"parts":[{}]}}}',
        b'{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"m","role":"ROLE_USER",'
        b'"parts":[{"data":null}],"taskId":"x"}}}',
        b'{"jsonrpc":"2.0","id":1,"method":"ListTasks","params":{"status":"NOPE","pageToken":"%%%"}}',
        b'{"jsonrpc":"2.0","id":1,"method":"ListTasks","params":{"contextId":"x","statusTimestampAfter":"yesterday"}}',
        b'{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"role":"robot","parts":[{"kind":"x"}]}}}',
        b'{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"messageId":"m","role":"user",'
        b'"parts":[{"kind":"file","file":{"bytes":"aGk=","uri":"http://x"}}]}}}',
        b'{"jsonrpc":"2.0","id":{"a":1},"method":"GetTask","params":{"id":"' + b"\x00" * 3 + b'"}}',
        b'{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"' + b"9" * 5000 + b'"}}',
        b"[" * 100000,
    ],
)
async def test_bad_input_never_gets_a_5xx(a2a: A2ATarget, body: bytes) -> None:
    url = a2a.agent("echo")
    for target in (url, url + "/message:send", url + "/message:stream"):
        answer = await _post(target, body, V1)
        assert answer.status_code < 500, answer.text
        assert "error" in answer.json()


async def test_history_length_of_a_send(a2a: A2ATarget) -> None:
    url = a2a.agent("echo")
    plain = await _rpc(url, "SendMessage", {"message": _message("h")})
    assert [m["parts"] for m in plain["result"]["task"]["history"]] == [[{"text": "h"}]]
    none = await _rpc(url, "SendMessage", {"message": _message("h"), "configuration": {"historyLength": 0}})
    assert "history" not in none["result"]["task"]
    negative = await _rpc(
        url, "SendMessage", {"message": _message("h"), "configuration": {"historyLength": -1}}
    )
    assert negative["error"]["code"] == -32602
