"""ACPService: the framework-neutral ACP server (routing, validation, errors, modes, SSE).

Rules this module keeps:

* Every answer under the mount is either what the spec describes or an ACP error
  ``{code, message, data?}``: 404 for what does not exist, 405 for a wrong method, 409 for a state
  conflict, 413 for a body over the limit, 422 for bad input, 503 when the store is unreachable and
  500 (with no internals) for anything unexpected.
* Input is validated before a run starts, so bad input gets a JSON error, never a stream that dies.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import parse_qs

from pydantic import BaseModel, ValidationError

from .agents import AgentRegistry
from .engine import RunEngine
from .errors import ACPError, NotFoundError, PayloadTooLargeError, ValidationFailed
from .http import Headers, Request, Response, StreamResponse
from .memory_store import MemoryStore
from .models import (
    AgentsListResponse,
    Error,
    ErrorCode,
    RunCreateRequest,
    RunMode,
    RunResumeRequest,
)
from .settings import Settings
from .sse import error_frame, event_frames, run_of_event
from .store import Store, StoreUnavailable

__all__ = ["ACPService"]

logger = logging.getLogger("acp_adapters")

_JSON: Headers = [("content-type", "application/json")]
_STREAM: Headers = [
    ("content-type", "text/event-stream; charset=utf-8"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
]
_UUID = r"(?P<id>[^/]+)"
Handler = Callable[["ACPService", Request, str], Awaitable[Response | StreamResponse]]


class ACPService:
    """Serves the ACP API for a registry of agents, whatever the web framework.

    ``handle`` takes a neutral :class:`Request` and gives a :class:`Response` or a
    :class:`StreamResponse`. It must be called on the event loop that hosts the engine (the
    server's loop under ASGI, the bridge's loop under WSGI); the engine starts lazily on the first
    call, and ``aclose`` stops it.
    """

    def __init__(
        self,
        registry: AgentRegistry,
        *,
        store: Store | None = None,
        settings: Settings | None = None,
        sync_agent_context: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> None:
        """``sync_agent_context``, if given, is entered in the worker thread around every call of a sync
        agent (a plain function or a sync generator): a Flask app context, a database connection."""
        self.registry = registry
        self.settings = settings or Settings()
        self.store = store or MemoryStore()
        self.store.configure(self.settings)
        self.engine = RunEngine(registry, self.store, self.settings, sync_agent_context)

    async def handle(self, request: Request) -> Response | StreamResponse:
        """Answer one request."""
        try:
            response = await self._dispatch(request)
        except ACPError as exc:
            response = _error(exc.status, exc.error)
        except StoreUnavailable as exc:
            logger.warning("store unreachable: %s", exc)
            response = _error(503, Error(code=ErrorCode.SERVER_ERROR, message="the store is unreachable"))
        except Exception:
            logger.exception("unexpected error answering %s %s", request.method, request.path)
            response = _error(500, Error(code=ErrorCode.SERVER_ERROR, message="internal server error"))
        if self.settings.cors_origins:
            response.headers.extend(self._cors_headers(request))
        return response

    def error_response(self, request: Request, error: ACPError) -> Response:
        """The answer that ``error`` gives to ``request``, as :meth:`handle` renders it: the ACP error
        JSON, the error's own headers (``WWW-Authenticate``, ``Retry-After``) and the CORS headers.

        For an adapter that refuses a request before handing it over (a Django guard, which runs in
        the view where it may use the ORM), so that every answer under the mount comes from the core.
        Pure: any thread may call it.
        """
        response = _error(error.status, error.error)
        response.headers.extend(error.headers)
        if self.settings.cors_origins:
            response.headers.extend(self._cors_headers(request))
        return response

    async def aclose(self) -> None:
        """Stop the engine: cancel the runs executing in this process, release the store."""
        await self.engine.aclose()

    # routing --------------------------------------------------------------------------------------
    async def _dispatch(self, request: Request) -> Response | StreamResponse:
        path = request.path.rstrip("/") or "/"
        method = request.method.upper()
        if method == "OPTIONS" and self.settings.cors_origins:
            return Response(204, [], b"")
        for pattern, handlers in _ROUTES:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            handler = handlers.get(method) or (handlers.get("GET") if method == "HEAD" else None)
            if handler is None:
                allowed = ", ".join(sorted(handlers))
                error = Error(
                    code=ErrorCode.INVALID_INPUT,
                    message=f"method {method} is not allowed on {path}; use {allowed}",
                    data={"allowed": sorted(handlers)},
                )
                response = _error(405, error)
                response.headers.append(("allow", allowed))
                return response
            if len(request.body) > self.settings.max_body_size:
                raise PayloadTooLargeError(self.settings.max_body_size)
            await self.engine.ensure_started()
            return await handler(self, request, match.groupdict().get("id") or "")
        raise NotFoundError(f"no such path: {path}")

    # handlers -------------------------------------------------------------------------------------
    async def _ping(self, request: Request, _: str) -> Response:
        return Response(200, list(_JSON), b"{}")

    async def _list_agents(self, request: Request, _: str) -> Response:
        query = parse_qs(request.query, keep_blank_values=True)
        agents = [agent.manifest for agent in self.registry]
        offset = _int_param(query, "offset", 0, None)
        limit = _int_param(query, "limit", 1, 1000)
        end = None if limit is None else (offset or 0) + limit
        body = AgentsListResponse(agents=agents[offset or 0 : end])
        return _json(200, body)

    async def _get_agent(self, request: Request, name: str) -> Response:
        agent = self.registry.get(name)
        if agent is None:
            raise NotFoundError(f"agent {name} not found")
        return _json(200, agent.manifest)

    async def _create_run(self, request: Request, _: str) -> Response | StreamResponse:
        body = _parse(RunCreateRequest, request.body)
        run = await self.engine.create(body, owner=request.owner, base_url=request.base_url)
        headers = [("run-id", str(run.run_id))]
        if body.mode is RunMode.ASYNC:
            return _json(202, run, headers)
        if body.mode is RunMode.STREAM:
            return StreamResponse(200, _STREAM + headers, self._stream(run.run_id, 0))
        return await self._answer_when_settled(request, run.run_id, 0, headers)

    async def _get_run(self, request: Request, run_id: str) -> Response:
        record = await self.engine.get(_uuid(run_id, "run_id"), request.owner)
        return _json(200, record.run, [("run-id", run_id)])

    async def _resume_run(self, request: Request, run_id: str) -> Response | StreamResponse:
        rid = _uuid(run_id, "run_id")
        body = _parse(RunResumeRequest, request.body)
        if body.run_id is not None and body.run_id != rid:
            raise ValidationFailed("run_id in the body differs from the path", {"fields": ["run_id"]})
        start = await self.engine.resume(rid, body, request.owner)
        headers = [("run-id", str(rid))]
        if body.mode is RunMode.STREAM:
            return StreamResponse(200, _STREAM + headers, self._stream(rid, start))
        if body.mode is RunMode.SYNC:
            return await self._answer_when_settled(request, rid, start, headers)
        record = await self.engine.get(rid, request.owner)
        return _json(202, record.run, headers)

    async def _cancel_run(self, request: Request, run_id: str) -> Response:
        record = await self.engine.cancel(_uuid(run_id, "run_id"), request.owner)
        return _json(202, record.run, [("run-id", run_id)])

    async def _run_events(self, request: Request, run_id: str) -> Response:
        rid = _uuid(run_id, "run_id")
        await self.engine.get(rid, request.owner)
        events = await self.store.read_events(rid, 0)
        body = b'{"events":[' + b",".join(event.data for event in events) + b"]}"
        return Response(200, [*_JSON, ("run-id", run_id)], body)

    async def _get_session(self, request: Request, session_id: str) -> Response:
        sid = _uuid(session_id, "session_id")
        record = await self.store.get_session(sid)
        if record is None or (record.owner is not None and record.owner != request.owner):
            raise NotFoundError(f"session {session_id} not found")
        body: dict[str, Any] = {"id": str(record.id), "history": record.history}
        if record.state is not None:
            body["state"] = record.state
        return _json(200, body)

    async def _get_resource(self, request: Request, resource_id: str) -> Response:
        record = await self.store.get_resource(_uuid(resource_id, "resource_id"))
        if record is None or (record.owner is not None and record.owner != request.owner):
            raise NotFoundError(f"resource {resource_id} not found")
        return Response(200, list(_JSON), record.data)

    async def _answer_when_settled(
        self, request: Request, run_id: uuid.UUID, start: int, headers: Headers
    ) -> Response:
        """200 with the run once it awaits or ends: the run as its last event carries it."""
        last = await self.engine.wait(run_id, start)
        if last is not None:
            return Response(200, _JSON + headers, run_of_event(last))
        record = await self.engine.get(run_id, request.owner)
        return _json(200, record.run, headers)

    # streams --------------------------------------------------------------------------------------
    async def _stream(self, run_id: uuid.UUID, start: int) -> AsyncIterator[bytes]:
        try:
            async for index, events in self.engine.follow(run_id, start):
                yield event_frames(index, events) if events else b": ping\n\n"
        except StoreUnavailable:
            logger.warning("store unreachable while streaming run %s", run_id)
            yield error_frame(Error(code=ErrorCode.SERVER_ERROR, message="the store is unreachable"))

    def _cors_headers(self, request: Request) -> Headers:
        origin = request.headers.get("origin")
        allowed = self.settings.cors_origins
        if origin is None or ("*" not in allowed and origin not in allowed):
            return []
        return [
            ("access-control-allow-origin", origin),
            ("access-control-allow-methods", "GET, POST, OPTIONS"),
            ("access-control-allow-headers", "content-type, authorization"),
            ("access-control-expose-headers", "run-id"),
            ("vary", "origin"),
        ]


_ROUTES: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
    (re.compile(r"/ping"), {"GET": ACPService._ping}),
    (re.compile(r"/agents"), {"GET": ACPService._list_agents}),
    (re.compile(r"/agents/(?P<id>[^/]+)"), {"GET": ACPService._get_agent}),
    (re.compile(r"/runs"), {"POST": ACPService._create_run}),
    (re.compile(rf"/runs/{_UUID}"), {"GET": ACPService._get_run, "POST": ACPService._resume_run}),
    (re.compile(rf"/runs/{_UUID}/cancel"), {"POST": ACPService._cancel_run}),
    (re.compile(rf"/runs/{_UUID}/events"), {"GET": ACPService._run_events}),
    (re.compile(rf"/sessions?/{_UUID}"), {"GET": ACPService._get_session}),
    (re.compile(rf"/resources/{_UUID}"), {"GET": ACPService._get_resource}),
]


def _json(status: int, body: BaseModel | dict[str, Any], headers: Headers | None = None) -> Response:
    if isinstance(body, BaseModel):
        data = body.__pydantic_serializer__.to_json(body, exclude_none=True)
    else:
        import json

        data = json.dumps(body, separators=(",", ":")).encode()
    return Response(status, _JSON + (headers or []), data)


def _error(status: int, error: Error) -> Response:
    return _json(status, error)


def _parse(model: type[Any], body: bytes) -> Any:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        if any(error["type"] == "json_invalid" for error in errors) or not body.strip():
            raise ValidationFailed("the request body is not valid JSON") from None
        fields = [
            {"field": ".".join(str(part) for part in error["loc"]) or "body", "message": error["msg"]}
            for error in errors
        ]
        raise ValidationFailed(
            "the request body does not match the schema: " + ", ".join(f["field"] for f in fields),
            {"fields": fields},
        ) from None


def _uuid(value: str, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationFailed(f"{name} must be a UUID, not {value!r}", {"fields": [name]}) from None


def _int_param(query: dict[str, list[str]], name: str, low: int, high: int | None) -> int | None:
    values = query.get(name)
    if not values:
        return None
    try:
        value = int(values[-1])
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ValidationFailed(f"{name} must be a whole number {bounds}", {"fields": [name]})
    return value
