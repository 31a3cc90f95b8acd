"""The HTTP+JSON binding of A2A 1.0, under ``{a2a mount}/{agent}``: ``POST /message:send``,
``POST /message:stream``, ``GET /tasks/{id}``, ``GET /tasks``, ``POST /tasks/{id}:cancel``,
``GET|POST /tasks/{id}:subscribe``.

Rules this module keeps:

* Errors are ``google.rpc.Status`` JSON (``{"error": {"code", "status", "message", "details"}}``) with
  the error's HTTP status, their ``details`` holding the ``ErrorInfo`` whose ``reason`` the official
  clients map back to an error (``TASK_NOT_FOUND``...).
* ``GET /tasks`` always answers with its paging fields (``nextPageToken`` empty on the last page).
* Only 1.0 is served here (0.3's HTTP+JSON paths are not): an ``A2A-Version`` naming another version
  is ``VERSION_NOT_SUPPORTED``; no header is 1.0.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from acp_adapters.core.http import Request, Response, StreamResponse
from acp_adapters.core.responses import STREAM

from .errors import (
    A2AError,
    ExtendedCardNotConfigured,
    InvalidParams,
    MethodNotFound,
    PushNotificationNotSupported,
    VersionNotSupported,
    error_info,
)
from .models import ListTasksRequest, SendMessageRequest, SendMessageResponse
from .models import StreamResponse as Item
from .tasks import Caller, TaskOperations, TaskStream
from .wire import Dialect, decode, dialect_of, event_stream, params_of, to_a2a_error

__all__ = ["A2A_JSON", "error_response", "handle_rest", "status_body"]

#: The media type of the binding's answers, as a2a-sdk sends it.
A2A_JSON = [("content-type", "application/a2a+json")]
Handler = Callable[[TaskOperations, Caller, Request, str], Awaitable["Response | StreamResponse"]]


class MethodNotAllowed(A2AError):
    """A path of the binding asked with a method it does not take (405 with ``Allow``)."""

    code, reason, http_status, grpc_status = -32601, "METHOD_NOT_FOUND", 405, "UNIMPLEMENTED"
    default_message = "method not allowed"


def status_body(error: A2AError) -> bytes:
    """An error as ``google.rpc.Status`` JSON."""
    body = {
        "error": {
            "code": error.http_status,
            "status": error.grpc_status,
            "message": error.message,
            "details": [error_info(error)],
        }
    }
    return json.dumps(body, separators=(",", ":")).encode()


def error_response(error: A2AError) -> Response:
    """An error as this binding answers it (and as the card's path does)."""
    return Response(
        error.http_status, [("content-type", "application/json"), *error.headers], status_body(error)
    )


def _json(model: Any) -> Response:
    return Response(200, list(A2A_JSON), model.wire_json())


async def _send(ops: TaskOperations, caller: Caller, request: Request, _: str) -> Response:
    params = params_of(SendMessageRequest, await decode(request.body), ops.settings)
    return _json(SendMessageResponse(task=await ops.send(caller, params)))


async def _stream(ops: TaskOperations, caller: Caller, request: Request, _: str) -> StreamResponse:
    params = params_of(SendMessageRequest, await decode(request.body), ops.settings)
    return _streamed(await ops.send_streaming(caller, params))


async def _get(ops: TaskOperations, caller: Caller, request: Request, task_id: str) -> Response:
    query = _query(request)
    return _json(await ops.get(caller, task_id, _int(query, "historyLength")))


async def _list(ops: TaskOperations, caller: Caller, request: Request, _: str) -> Response:
    query = _query(request)
    raw: dict[str, Any] = {
        name: query[name]
        for name in ("contextId", "status", "pageToken", "statusTimestampAfter")
        if name in query
    }
    for name in ("pageSize", "historyLength"):
        raw[name] = _int(query, name)
    if "includeArtifacts" in query:
        flag = query["includeArtifacts"].lower()
        if flag not in ("true", "false", "1", "0"):
            raise InvalidParams("includeArtifacts must be true or false")
        raw["includeArtifacts"] = flag in ("true", "1")
    return _json(await ops.list(caller, params_of(ListTasksRequest, raw, ops.settings)))


async def _cancel(ops: TaskOperations, caller: Caller, request: Request, task_id: str) -> Response:
    return _json(await ops.cancel(caller, task_id))


async def _subscribe(ops: TaskOperations, caller: Caller, request: Request, task_id: str) -> StreamResponse:
    return _streamed(await ops.subscribe(caller, task_id))


async def _no_push(ops: TaskOperations, caller: Caller, request: Request, _: str) -> Response:
    raise PushNotificationNotSupported("push notifications are not offered by this server")


async def _no_extended_card(ops: TaskOperations, caller: Caller, request: Request, _: str) -> Response:
    raise ExtendedCardNotConfigured("this agent has no extended card")


_TASK = r"/tasks/(?P<id>[^/:]+)"
_ROUTES: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
    (re.compile(r"/message:send"), {"POST": _send}),
    (re.compile(r"/message:stream"), {"POST": _stream}),
    (re.compile(r"/tasks"), {"GET": _list}),
    (re.compile(_TASK), {"GET": _get}),
    (re.compile(_TASK + ":cancel"), {"POST": _cancel}),
    (re.compile(_TASK + ":subscribe"), {"GET": _subscribe, "POST": _subscribe}),
    (
        re.compile(_TASK + r"/pushNotificationConfigs(/[^/]+)?"),
        dict.fromkeys(("GET", "POST", "DELETE"), _no_push),
    ),
    (re.compile(r"/extendedAgentCard"), {"GET": _no_extended_card}),
]


def is_rest_path(path: str) -> bool:
    """Whether ``path`` (after the agent's name) is one of this binding's."""
    return any(pattern.fullmatch(path) for pattern, _ in _ROUTES)


async def handle_rest(
    ops: TaskOperations, caller: Caller, request: Request, path: str
) -> Response | StreamResponse:
    """Answer a request of the binding; ``path`` is what follows the agent's name (``/tasks/...``)."""
    try:
        if dialect_of(request.headers) is Dialect.V03:
            raise VersionNotSupported(
                "the HTTP+JSON binding is served in A2A 1.0 only (0.3 clients: use JSON-RPC)",
                {"supported": "1.0"},
            )
        method = request.method.upper()
        for pattern, handlers in _ROUTES:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            handler = handlers.get(method) or (handlers.get("GET") if method == "HEAD" else None)
            if handler is None:
                allowed = ", ".join(sorted(handlers))
                raise MethodNotAllowed(
                    f"{method[:20]} is not allowed here; use {allowed}", headers=[("allow", allowed)]
                )
            return await handler(ops, caller, request, match.groupdict().get("id") or "")
        raise MethodNotFound(f"no such path: {path[:120]!r}")
    except Exception as exc:
        return error_response(to_a2a_error(exc))


def _streamed(items: TaskStream) -> StreamResponse:
    def frame(item: Item, final: bool) -> bytes:
        return b"data: " + item.wire_json() + b"\n\n"

    def error_frame(error: A2AError) -> bytes:
        return b"event: error\ndata: " + status_body(error) + b"\n\n"

    return StreamResponse(200, list(STREAM), event_stream(items, frame, error_frame))


def _query(request: Request) -> dict[str, str]:
    return {name: values[-1] for name, values in parse_qs(request.query, keep_blank_values=True).items()}


def _int(query: dict[str, str], name: str) -> int | None:
    if name not in query or query[name] == "":
        return None
    try:
        return int(query[name])
    except ValueError:
        raise InvalidParams(f"{name} must be a whole number", {"field": name}) from None
