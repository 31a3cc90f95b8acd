"""ACPService: the framework-neutral ACP server (routing, validation, errors, modes, SSE).

Why one module over 300 lines: a fifth of it is the public class's documentation (authorization,
idempotency), and the rest is the route table and one short handler per route. The pieces with a job
of their own live beside it: :mod:`.idempotency` (the ``Idempotency-Key``), :mod:`.responses`
(answers as bytes, CORS headers, path and query parameters), :mod:`.bodies` (request bodies).

Rules this module keeps:

* Every answer under the mount is either what the spec describes or an ACP error
  ``{code, message, data?}``: 401/403 from the ``authorize`` hook, 404 for what does not exist (or
  belongs to another owner: the same answer), 405 for a wrong method, 409 for a state conflict, 413
  for a body over the limit, 415 for a body that is not JSON, 422 for bad input, 429 when a limit on
  work is reached, 503 when the store is unreachable and 500 (with no internals) for anything
  unexpected. Every answer, errors included, carries the error's headers (``Retry-After``,
  ``WWW-Authenticate``) and the CORS headers.
* ``/health`` (the store answers: 200, else 503) and ``/openapi.json`` (:mod:`.openapi`) are not ACP;
  ``/health``, like ``/ping``, is open to all (the ``authorize`` hook is not asked).
* ``/playground`` (only when ``Settings.playground`` is on) is a page, not ACP: :mod:`.playground`.
* Input is validated before a run starts, so bad input gets a JSON error, never a stream that dies.
* Only canonical ids (``str(uuid)``) reach headers, messages and logs, never the text of the path.
* An empty owner ``""`` is no owner (``None``), before anything reaches the engine or a store.
* With ``Settings.telemetry`` on, every request is answered inside its span (:mod:`.telemetry`).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from .agents import AgentRegistry
from .arguments import check_service_arguments
from .bodies import check_create_caps, check_resume_caps, parse_body, require_json
from .engine import RunEngine
from .errors import ACPError, NotFoundError, PayloadTooLargeError, ValidationFailed, agent_not_found
from .events import RunJSON, run_of_event
from .executors import Executor
from .http import Headers, Request, Response, StreamResponse
from .idempotency import claim_idempotency_key, replayed_run
from .memory_store import MemoryStore
from .models import (
    AgentManifest,
    AgentsListResponse,
    Error,
    ErrorCode,
    Run,
    RunCreateRequest,
    RunMode,
    RunResumeRequest,
    RunStatus,
)
from .openapi import mount_document
from .playground import playground_response
from .rejoin import rejoin_start, wants_event_stream
from .responses import (
    JSON,
    STREAM,
    cors_headers,
    int_param,
    json_response,
    not_allowed,
    parse_uuid,
    render_error,
    shown,
)
from .settings import Settings
from .sse import error_frame, event_frames
from .store import RunRecord, Store, StoreUnavailable

if TYPE_CHECKING:
    from .telemetry import Telemetry

__all__ = ["ACPService", "Authorize"]

logger = logging.getLogger("acp_adapters")

#: The authorization hook: ``authorize(request, agent)`` returns (or, if async, resolves) to let the
#: request through, or raises :class:`~acp_adapters.core.errors.AuthenticationRequired` (401, with
#: ``WWW-Authenticate``) or :class:`~acp_adapters.core.errors.PermissionRequired` (403), which the core
#: renders (any :class:`~acp_adapters.core.errors.ACPError` is rendered). See :class:`ACPService`.
Authorize = Callable[[Request, "str | None"], "Awaitable[None] | None"]

_UUID = r"(?P<id>[^/]+)"
#: With an ``authorize`` hook: how many agents an unknown agent's 404 asks the hook about at most.
_CHECKED_FOR_404 = 40
Handler = Callable[["ACPService", Request, str], Awaitable[Response | StreamResponse]]


class ACPService:
    """Serves the ACP API for a registry of agents, whatever the web framework.

    ``handle`` takes a neutral :class:`Request` and gives a :class:`Response` or a
    :class:`StreamResponse`. It must be called on the event loop that hosts the engine (the
    server's loop under ASGI, the bridge's loop under WSGI); the engine starts lazily on the first
    call, and ``aclose`` stops it.

    **Authorization.** ``authorize(request, agent)``, if given, is called before each operation; it
    returns (a coroutine function's result is awaited) to let it through, or raises
    :class:`~acp_adapters.core.errors.AuthenticationRequired` (401, its ``challenge`` sent as
    ``WWW-Authenticate``) or :class:`~acp_adapters.core.errors.PermissionRequired` (403): the core
    renders the error, with CORS headers, the same in every framework. It is called

    * with ``agent=None`` first, on every route but ``/ping`` (which stays open) and before the body is
      read: may this caller use the API at all?
    * then with the agent's name once the operation's agent is known: ``GET /agents/{name}``,
      ``POST /runs`` (the body's ``agent_name``), and for ``/runs/{id}``, its cancel, resume and events,
      the run's agent (after the owner check: a run of someone else is 404 without a call);
    * ``GET /agents`` lists only the agents for which the hook raises no 401/403.

    Sessions and resources are checked with ``None`` only (they are scoped by owner). A sync hook runs
    on the event loop: it must not block (read headers, compare the owner); do I/O in an async one.
    ``request.native`` is the framework's own request object, for a hook that needs it.

    **Idempotency.** ``POST /runs`` with an ``Idempotency-Key`` header (1 to 255 visible ASCII
    characters, else 422) makes at most one run per key and owner while runs are retained
    (``run_retention``). A repeat of the same key with the same body (byte for byte: its SHA-256 is
    kept) answers with that run instead of a new one: in async mode as ``GET /runs/{id}`` shows it now
    (202), in sync mode once it awaits or ends, in stream mode with its events from the first. The
    same key with another body gets 409. An unknown agent (404) and a limit on active runs (429) are
    answered before the key is taken, so the same key can be retried (while the server is full, a
    repeat may get the 429 too); only a request that fails between taking the key and creating its
    run (the store unreachable) leaves the key taken, and a repeat then gets 409 asking for a new key.
    """

    def __init__(
        self,
        registry: AgentRegistry,
        *,
        store: Store | None = None,
        settings: Settings | None = None,
        sync_agent_context: Callable[[], AbstractContextManager[Any]] | None = None,
        authorize: Authorize | None = None,
        executor: Executor | None = None,
    ) -> None:
        """``sync_agent_context``, if given, is entered in the worker thread around every call of a sync
        agent (a plain function or a sync generator): a Flask app context, a database connection.
        ``authorize`` is the authorization hook described above. ``executor`` says where runs execute:
        in this process (``None``, the default) or handed over, e.g. to Celery workers
        (``acp_adapters.celery.CeleryExecutor``, which needs a shared store)."""
        check_service_arguments(
            "ACPService",
            registry,
            store=store,
            settings=settings,
            executor=executor,
            sync_agent_context=sync_agent_context,
            authorize=authorize,
        )
        self.registry = registry
        self.settings = settings or Settings()
        self.store = store or MemoryStore()
        self.store.configure(self.settings)
        self.engine = RunEngine(registry, self.store, self.settings, sync_agent_context, executor)
        self.authorize = authorize
        self.engine.executor.bind(self)
        #: Spans and metrics (:mod:`.telemetry`) with ``Settings.telemetry`` on, else ``None``.
        self.telemetry = _telemetry(self.engine) if self.settings.telemetry else None

    async def handle(self, request: Request) -> Response | StreamResponse:
        """Answer one request (inside its span, with ``Settings.telemetry`` on)."""
        if self.telemetry is not None:
            return await self.telemetry.traced(request, self._answer)
        return await self._answer(request)

    async def _answer(self, request: Request) -> Response | StreamResponse:
        if request.owner == "":
            request = dataclasses.replace(request, owner=None)
        try:
            response = await self._dispatch(request)
        except ACPError as exc:
            return self.error_response(request, exc)
        except StoreUnavailable as exc:
            logger.warning("store unreachable: %s", exc)
            unreachable = Error(code=ErrorCode.SERVER_ERROR, message="the store is unreachable")
            return self.error_response(request, ACPError(unreachable, status=503))
        except Exception as exc:
            logger.exception("unexpected error answering %s %r", request.method, request.path[:200])
            return self.error_response(request, ACPError(self._internal_error(exc), status=500))
        if self.settings.cors_origins:
            response.headers.extend(cors_headers(request, self.settings.cors_origins))
        return response

    def _internal_error(self, exc: Exception) -> Error:
        """A 500's error: the exception's type and message in debug mode only (a hook's bug, say)."""
        if not self.settings.debug:
            return Error(code=ErrorCode.SERVER_ERROR, message="internal server error")
        kind = type(exc).__qualname__
        return Error(
            code=ErrorCode.SERVER_ERROR,
            message=f"internal server error: {kind}: {exc}"[:2000],
            data={"exception": kind},
        )

    def error_response(self, request: Request, error: ACPError) -> Response:
        """The answer that ``error`` gives to ``request``, as :meth:`handle` renders it: the ACP error
        JSON, the error's own headers (``WWW-Authenticate``, ``Retry-After``) and the CORS headers.

        For an adapter that refuses a request before handing it over (a Django guard, which runs in
        the view where it may use the ORM), so that every answer under the mount comes from the core.
        Pure: any thread may call it.
        """
        response = render_error(error.status, error.error)
        response.headers.extend(error.headers)
        if self.settings.cors_origins:
            response.headers.extend(cors_headers(request, self.settings.cors_origins))
        return response

    async def aclose(self) -> None:
        """Stop the engine: cancel the runs executing in this process, release the store."""
        await self.engine.aclose()

    # routing --------------------------------------------------------------------------------------
    async def _dispatch(self, request: Request) -> Response | StreamResponse:
        path = request.path.rstrip("/") or "/"
        method = request.method.upper()
        if method == "OPTIONS" and self.settings.cors_origins:
            return Response(204, [("access-control-max-age", "600")], b"")
        for pattern, handlers in _ROUTES:
            match = pattern.fullmatch(path)
            if match is None or (pattern is _PLAYGROUND and not self.settings.playground):
                continue
            handler = handlers.get(method) or (handlers.get("GET") if method == "HEAD" else None)
            if handler is None:
                return not_allowed(method, path, sorted(handlers))
            if len(request.body) > self.settings.max_body_size:
                raise PayloadTooLargeError(self.settings.max_body_size)
            if method == "POST":
                require_json(request.headers)
            if handler not in _OPEN:
                await self._authorized(request, None)
            await self.engine.ensure_started()
            return await handler(self, request, match.groupdict().get("id") or "")
        raise NotFoundError(f"no such path: {shown(path)}")

    async def _authorized(self, request: Request, agent: str | None) -> None:
        """Run the ``authorize`` hook; its ACPError (401, 403) becomes the answer."""
        if self.authorize is not None:
            outcome = self.authorize(request, agent)
            if inspect.isawaitable(outcome):
                await outcome

    async def _run_of(self, request: Request, run_id: uuid.UUID) -> RunRecord | None:
        """With a hook: the caller's run (404 otherwise), authorized for its agent."""
        if self.authorize is None:
            return None
        record = await self.engine.get(run_id, request.owner)
        await self._authorized(request, record.run.agent_name)
        return record

    # handlers -------------------------------------------------------------------------------------
    async def _ping(self, request: Request, _: str) -> Response:
        return Response(200, list(JSON), b"{}")

    async def _playground(self, request: Request, name: str) -> Response:
        return playground_response(request.path, name)

    async def _health(self, request: Request, _: str) -> Response:
        await self.store.ping()  # unreachable: StoreUnavailable, which handle() answers with a 503
        return Response(200, list(JSON), b'{"status":"ok"}')

    async def _openapi(self, request: Request, _: str) -> Response:
        if not self.settings.openapi_document:
            raise NotFoundError("no such path: /openapi.json")
        names = [agent.name for agent in self.registry]
        if self.authorize is not None:
            names = [name for name in names if await self._lets_through(request, name)]
        base_url = self.settings.public_url or request.base_url
        return Response(200, list(JSON), mount_document(names, base_url))

    def _with_status(self, manifest: AgentManifest) -> AgentManifest:
        """The manifest with the ``status`` of the agent's runs in this process (see :mod:`.run_reports`)."""
        status = self.engine.reports.status(manifest.name)
        return manifest if status is None else manifest.model_copy(update={"status": status})

    async def _list_agents(self, request: Request, _: str) -> Response:
        query = parse_qs(request.query, keep_blank_values=True)
        agents = [self._with_status(agent.manifest) for agent in self.registry]
        if self.authorize is not None:
            agents = [manifest for manifest in agents if await self._lets_through(request, manifest.name)]
        offset = int_param(query, "offset", 0, None)
        limit = int_param(query, "limit", 1, 1000)
        end = None if limit is None else (offset or 0) + limit
        body = AgentsListResponse(agents=agents[offset or 0 : end])
        return json_response(200, body)

    async def _lets_through(self, request: Request, agent: str) -> bool:
        try:
            await self._authorized(request, agent)
        except ACPError as exc:
            if exc.status in (401, 403):
                return False
            raise
        return True

    async def _agent_not_found(self, request: Request, name: str) -> NotFoundError:
        """The 404 for an unknown agent, naming close agents; with an ``authorize`` hook, only agents
        the caller may see (as ``GET /agents`` lists them), asking the hook about a few at most."""
        names = [agent.name for agent in self.registry]
        if self.authorize is not None:
            close = difflib.get_close_matches(name.lower().replace("_", "-"), names, n=3)
            candidates = dict.fromkeys([*close, *names[:_CHECKED_FOR_404]])
            names = [other for other in candidates if await self._lets_through(request, other)]
        return agent_not_found(shown(name), names)

    async def _get_agent(self, request: Request, name: str) -> Response:
        agent = self.registry.get(name)
        if agent is None:
            raise await self._agent_not_found(request, name)
        await self._authorized(request, agent.name)
        return json_response(200, self._with_status(agent.manifest))

    async def _create_run(self, request: Request, _: str) -> Response | StreamResponse:
        key = request.headers.get("idempotency-key")
        body = await parse_body(RunCreateRequest, request.body, self.settings)
        check_create_caps(body, self.settings)
        await self._authorized(request, body.agent_name)
        run_id = None
        agent = self.registry.get(body.agent_name)
        if agent is None:  # (refusals that need no run come before an idempotency key is taken)
            raise await self._agent_not_found(request, body.agent_name)
        if key is not None:
            self.engine.check_capacity(agent, request.owner)
            run_id, created = await claim_idempotency_key(
                self.store, self.settings, key, request.body, request.owner
            )
            if not created:  # a repeat: the answer is the run the first request created
                record = await replayed_run(self.store, run_id, request.owner)
                return await self._answer_in_mode(request, body.mode, record.run)
        base_url = self.settings.public_url or request.base_url
        run = await self.engine.create(body, owner=request.owner, base_url=base_url, run_id=run_id)
        if body.mode is RunMode.STREAM and run.status is RunStatus.CREATED:
            # The run's first event is the one the engine has just logged: the stream starts with it
            # without reading it back (a round trip to a shared store, behind the agent's first turn).
            first = event_frames(0, [RunJSON(run).event("run.created", run)])
            headers = [*STREAM, ("run-id", str(run.run_id))]
            return StreamResponse(200, headers, self._stream(run.run_id, 1, first))
        return await self._answer_in_mode(request, body.mode, run)

    async def _answer_in_mode(self, request: Request, mode: RunMode, run: Run) -> Response | StreamResponse:
        """A new run as ``mode`` answers: async at once (202), stream its events, sync once it settles."""
        headers = [("run-id", str(run.run_id))]
        if mode is RunMode.ASYNC:
            return json_response(202, run, headers)
        if mode is RunMode.STREAM:
            return StreamResponse(200, STREAM + headers, self._stream(run.run_id, 0))
        return await self._answer_when_settled(request, run.run_id, 0, headers)

    async def _get_run(self, request: Request, run_id: str) -> Response:
        rid = parse_uuid(run_id, "run_id")
        record = await self.engine.get(rid, request.owner)
        await self._authorized(request, record.run.agent_name)
        return json_response(200, record.run, [("run-id", str(rid))])

    async def _resume_run(self, request: Request, run_id: str) -> Response | StreamResponse:
        rid = parse_uuid(run_id, "run_id")
        body = await parse_body(RunResumeRequest, request.body, self.settings)
        check_resume_caps(body, self.settings)
        if body.run_id is not None and body.run_id != rid:
            raise ValidationFailed("run_id in the body differs from the path", {"fields": ["run_id"]})
        await self._run_of(request, rid)
        start = await self.engine.resume(rid, body, request.owner)
        headers = [("run-id", str(rid))]
        if body.mode is RunMode.STREAM:
            return StreamResponse(200, STREAM + headers, self._stream(rid, start))
        if body.mode is RunMode.SYNC:
            return await self._answer_when_settled(request, rid, start, headers)
        record = await self.engine.get(rid, request.owner)
        return json_response(202, record.run, headers)

    async def _cancel_run(self, request: Request, run_id: str) -> Response:
        rid = parse_uuid(run_id, "run_id")
        await self._run_of(request, rid)
        record = await self.engine.cancel(rid, request.owner)
        return json_response(202, record.run, [("run-id", str(rid))])

    async def _run_events(self, request: Request, run_id: str) -> Response | StreamResponse:
        rid = parse_uuid(run_id, "run_id")
        record = await self.engine.get(rid, request.owner)
        await self._authorized(request, record.run.agent_name)
        headers = [("run-id", str(rid))]
        if request.method.upper() == "GET" and wants_event_stream(request.headers):  # see .rejoin
            start = await rejoin_start(self.store, record, request)
            if start is None:  # the run has ended and the client has every event
                return Response(204, headers, b"")
            return StreamResponse(200, STREAM + headers, self._stream(rid, start))
        events = await self.store.read_events(rid, 0)
        body = b'{"events":[' + b",".join(event.data for event in events) + b"]}"
        return Response(200, JSON + headers, body)

    async def _get_session(self, request: Request, session_id: str) -> Response:
        sid = parse_uuid(session_id, "session_id")
        record = await self.store.get_session(sid)
        if record is None or (record.owner is not None and record.owner != request.owner):
            raise NotFoundError(f"session {sid} not found")
        body: dict[str, Any] = {"id": str(record.id), "history": record.history}
        if record.state is not None:
            body["state"] = record.state
        return json_response(200, body)

    async def _get_resource(self, request: Request, resource_id: str) -> Response:
        rid = parse_uuid(resource_id, "resource_id")
        record = await self.store.get_resource(rid)
        if record is None or (record.owner is not None and record.owner != request.owner):
            raise NotFoundError(f"resource {rid} not found")
        return Response(200, list(JSON), record.data)

    async def _answer_when_settled(
        self, request: Request, run_id: uuid.UUID, start: int, headers: Headers
    ) -> Response:
        """200 with the run once it awaits or ends: the run as its last event carries it."""
        last = await self.engine.wait(run_id, start)
        if last is not None:
            return Response(200, JSON + headers, run_of_event(last))
        record = await self.engine.get(run_id, request.owner)
        return json_response(200, record.run, headers)

    # streams --------------------------------------------------------------------------------------
    async def _stream(self, run_id: uuid.UUID, start: int, first: bytes = b"") -> AsyncIterator[bytes]:
        """The run's events from ``start`` on, as SSE chunks; ``first``, if given, is sent before them."""
        if first:
            yield first
        try:
            async for index, events in self.engine.follow(run_id, start):
                yield event_frames(index, events) if events else b": ping\n\n"
        except StoreUnavailable:
            logger.warning("store unreachable while streaming run %s", run_id)
            yield error_frame(Error(code=ErrorCode.SERVER_ERROR, message="the store is unreachable"))


def _telemetry(engine: RunEngine) -> Telemetry:
    """The service's spans and metrics, told of the engine's runs (``Settings.telemetry`` is on)."""
    try:
        from .telemetry import Telemetry
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("opentelemetry"):
            raise
        raise ModuleNotFoundError(
            f"the telemetry setting needs OpenTelemetry's API ({exc.name} is missing): "
            'pip install "acp-adapters[otel]"',
            name=exc.name,
        ) from exc
    telemetry = Telemetry()
    engine.reports.telemetry = telemetry
    return telemetry


#: The playground's page and assets: routed only when ``Settings.playground`` is on (core/playground.py).
_PLAYGROUND = re.compile(r"/playground(?:/(?P<id>[^/]+))?")
#: The routes served without the ``authorize`` hook: they hold no data.
_OPEN = (ACPService._ping, ACPService._health, ACPService._playground)
_ROUTES: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
    (re.compile(r"/ping"), {"GET": ACPService._ping}),
    (re.compile(r"/health"), {"GET": ACPService._health}),
    (_PLAYGROUND, {"GET": ACPService._playground}),
    (re.compile(r"/openapi\.json"), {"GET": ACPService._openapi}),
    (re.compile(r"/agents"), {"GET": ACPService._list_agents}),
    (re.compile(r"/agents/(?P<id>[^/]+)"), {"GET": ACPService._get_agent}),
    (re.compile(r"/runs"), {"POST": ACPService._create_run}),
    (re.compile(rf"/runs/{_UUID}"), {"GET": ACPService._get_run, "POST": ACPService._resume_run}),
    (re.compile(rf"/runs/{_UUID}/cancel"), {"POST": ACPService._cancel_run}),
    (re.compile(rf"/runs/{_UUID}/events"), {"GET": ACPService._run_events}),
    (re.compile(rf"/sessions?/{_UUID}"), {"GET": ACPService._get_session}),
    (re.compile(rf"/resources/{_UUID}"), {"GET": ACPService._get_resource}),
]
