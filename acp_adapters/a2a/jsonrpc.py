"""The JSON-RPC binding: ``POST {a2a mount}/{agent}`` with a JSON-RPC 2.0 request, in either dialect.

Rules this module keeps:

* The method names the dialect: 1.0's ``SendMessage``, ``SendStreamingMessage``, ``GetTask``,
  ``ListTasks``, ``CancelTask``, ``SubscribeToTask``; 0.3's ``message/send``, ``message/stream``,
  ``tasks/get``, ``tasks/cancel``, ``tasks/resubscribe``. 0.3 names work without an ``A2A-Version``
  header (deployed 0.3 clients send none); a header that names the other dialect, or a version this
  server does not speak, is ``-32009`` (version not supported).
* Every answer is a JSON-RPC response with HTTP 200, errors included (the official clients read the
  error from the body); only errors of the HTTP exchange itself keep their status (see
  :mod:`.errors`). A 1.0 error carries its ``ErrorInfo`` as ``data``.
* Streams are ``text/event-stream``: one JSON-RPC response per ``data:`` line, each with the request's
  id; an error after the stream started is an ``event: error`` carrying a JSON-RPC error.
* Push notifications are not offered: their methods are ``-32003``; there is no extended card
  (``-32007``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from acp_adapters.core.http import Request, Response, StreamResponse
from acp_adapters.core.responses import STREAM

from . import v03
from .errors import (
    A2AError,
    ExtendedCardNotConfigured,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    PushNotificationNotSupported,
    VersionNotSupported,
    error_info,
)
from .models import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    SendMessageRequest,
    SendMessageResponse,
    SubscribeToTaskRequest,
)
from .models import (
    StreamResponse as Item,
)
from .tasks import Caller, TaskOperations, TaskStream
from .wire import Dialect, decode, dialect_of, event_stream, params_of, to_a2a_error

__all__ = ["V03_METHODS", "V1_METHODS", "handle_jsonrpc"]

JSON = [("content-type", "application/json")]
RpcId = str | int | None
Handler = Callable[[TaskOperations, Caller, Any], Awaitable[Any]]


# 1.0 ------------------------------------------------------------------------------------------------
async def _send(ops: TaskOperations, caller: Caller, raw: Any) -> Any:
    task = await ops.send(caller, params_of(SendMessageRequest, raw, ops.settings))
    return SendMessageResponse(task=task).wire()


async def _send_streaming(ops: TaskOperations, caller: Caller, raw: Any) -> TaskStream:
    return await ops.send_streaming(caller, params_of(SendMessageRequest, raw, ops.settings))


async def _get(ops: TaskOperations, caller: Caller, raw: Any) -> Any:
    params = params_of(GetTaskRequest, raw, ops.settings)
    return (await ops.get(caller, params.id, params.history_length)).wire()


async def _list(ops: TaskOperations, caller: Caller, raw: Any) -> Any:
    return (await ops.list(caller, params_of(ListTasksRequest, raw, ops.settings))).wire()


async def _cancel(ops: TaskOperations, caller: Caller, raw: Any) -> Any:
    return (await ops.cancel(caller, params_of(CancelTaskRequest, raw, ops.settings).id)).wire()


async def _subscribe(ops: TaskOperations, caller: Caller, raw: Any) -> TaskStream:
    return await ops.subscribe(caller, params_of(SubscribeToTaskRequest, raw, ops.settings).id)


# 0.3 ------------------------------------------------------------------------------------------------
async def _send_03(ops: TaskOperations, caller: Caller, raw: Any) -> Any:
    params = params_of(v03.MessageSendParams, raw, ops.settings)
    return v03.task(await ops.send(caller, _as_v1(params)))


async def _stream_03(ops: TaskOperations, caller: Caller, raw: Any) -> TaskStream:
    params = params_of(v03.MessageSendParams, raw, ops.settings)
    return await ops.send_streaming(caller, _as_v1(params))


async def _get_03(ops: TaskOperations, caller: Caller, raw: Any) -> Any:
    params = params_of(v03.TaskQueryParams, raw, ops.settings)
    return v03.task(await ops.get(caller, params.id, params.history_length))


async def _cancel_03(ops: TaskOperations, caller: Caller, raw: Any) -> Any:
    return v03.task(await ops.cancel(caller, params_of(v03.TaskIdParams, raw, ops.settings).id))


async def _resubscribe_03(ops: TaskOperations, caller: Caller, raw: Any) -> TaskStream:
    return await ops.subscribe(caller, params_of(v03.TaskIdParams, raw, ops.settings).id)


def _as_v1(params: v03.MessageSendParams) -> SendMessageRequest:
    try:
        return params.as_v1()
    except ValueError as exc:  # (a file part with both bytes and uri, bad base64)
        raise InvalidParams(str(exc)[:300]) from None


async def _no_push(ops: TaskOperations, caller: Caller, raw: Any) -> Any:
    raise PushNotificationNotSupported("push notifications are not offered by this server")


async def _no_extended_card(ops: TaskOperations, caller: Caller, raw: Any) -> Any:
    raise ExtendedCardNotConfigured("this agent has no extended card")


_PUSH_V1 = ("Create", "Get", "List", "Delete")
V1_METHODS: dict[str, Handler] = {
    "SendMessage": _send,
    "SendStreamingMessage": _send_streaming,
    "GetTask": _get,
    "ListTasks": _list,
    "CancelTask": _cancel,
    "SubscribeToTask": _subscribe,
    "GetExtendedAgentCard": _no_extended_card,
    **{f"{verb}TaskPushNotificationConfig{'s' if verb == 'List' else ''}": _no_push for verb in _PUSH_V1},
}
V03_METHODS: dict[str, Handler] = {
    "message/send": _send_03,
    "message/stream": _stream_03,
    "tasks/get": _get_03,
    "tasks/cancel": _cancel_03,
    "tasks/resubscribe": _resubscribe_03,
    "agent/getAuthenticatedExtendedCard": _no_extended_card,
    **{f"tasks/pushNotificationConfig/{verb}": _no_push for verb in ("set", "get", "list", "delete")},
}
_STREAMING = {"SendStreamingMessage", "SubscribeToTask", "message/stream", "tasks/resubscribe"}


# the envelope -------------------------------------------------------------------------------------
def error_body(rpc_id: RpcId, error: A2AError, dialect: Dialect) -> bytes:
    """A JSON-RPC error response."""
    detail: dict[str, Any] = {"code": error.code, "message": error.message}
    if dialect is Dialect.V1:
        detail["data"] = [error_info(error)]
    elif error.metadata:
        detail["data"] = error.metadata
    return json.dumps({"jsonrpc": "2.0", "id": rpc_id, "error": detail}, separators=(",", ":")).encode()


def _result_body(rpc_id: RpcId, result: Any) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": rpc_id, "result": result}, separators=(",", ":")).encode()


def error_response(rpc_id: RpcId, error: A2AError, dialect: Dialect) -> Response:
    """An error as the JSON-RPC binding answers it (HTTP 200 but for errors of the exchange itself)."""
    return Response(error.jsonrpc_status, [*JSON, *error.headers], error_body(rpc_id, error, dialect))


async def handle_jsonrpc(ops: TaskOperations, caller: Caller, request: Request) -> Response | StreamResponse:
    """Answer one JSON-RPC request to the agent of ``caller``."""
    rpc_id: RpcId = None
    try:
        header = dialect_of(request.headers)
    except A2AError as exc:
        return error_response(None, exc, Dialect.V1)
    dialect = header or Dialect.V1
    try:
        body = await decode(request.body)
        if isinstance(body, list):
            raise InvalidRequest("batch requests are not supported")
        if not isinstance(body, dict):
            raise InvalidRequest("a JSON-RPC request is an object")
        given_id = body.get("id")
        if isinstance(given_id, (str, int)) and not isinstance(given_id, bool):
            rpc_id = given_id
        elif given_id is not None:
            raise InvalidRequest("id must be a string, a number or null")
        if body.get("jsonrpc") != "2.0":
            raise InvalidRequest("'jsonrpc' must be exactly '2.0'")
        method = body.get("method")
        if not isinstance(method, str) or not method:
            raise InvalidRequest("method is required")
        handler, dialect = V1_METHODS.get(method), Dialect.V1
        if handler is None:
            handler, dialect = V03_METHODS.get(method), Dialect.V03
        if handler is None:
            dialect = header or Dialect.V1
            raise MethodNotFound(f"method {method[:80]!r} does not exist")
        if header is not None and header is not dialect:
            raise VersionNotSupported(
                f"method {method} is A2A {dialect.value}, but A2A-Version says {header.value}",
                {"supported": dialect.value},
            )
        params = body.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise InvalidRequest("params must be an object")
        result = await handler(ops, caller, params)
    except Exception as exc:
        return error_response(rpc_id, to_a2a_error(exc), dialect)
    if method not in _STREAMING:
        return Response(200, list(JSON), _result_body(rpc_id, result))
    return StreamResponse(200, list(STREAM), _framed(result, rpc_id, dialect))


def _framed(items: TaskStream, rpc_id: RpcId, dialect: Dialect) -> Any:
    def frame(item: Item, final: bool) -> bytes:
        result = v03.stream_item(item, final=final) if dialect is Dialect.V03 else item.wire()
        return b"data: " + _result_body(rpc_id, result) + b"\n\n"

    def error_frame(error: A2AError) -> bytes:
        return b"event: error\ndata: " + error_body(rpc_id, error, dialect) + b"\n\n"

    return event_stream(items, frame, error_frame)
