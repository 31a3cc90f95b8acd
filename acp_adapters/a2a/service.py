"""A2AService: the framework-neutral A2A server, beside an ACP service and sharing its engine.

Paths, relative to the A2A mount (``/a2a``):

* ``GET /{agent}/.well-known/agent-card.json``: the agent's card (``agent.json``, 0.2's name, too);
* ``POST /{agent}``: the JSON-RPC binding (:mod:`.jsonrpc`), in 1.0 or 0.3;
* ``/{agent}/message:send``, ``/{agent}/tasks/...``: the HTTP+JSON binding (:mod:`.rest`).

Rules this module keeps:

* One engine: the service is made from an :class:`~acp_adapters.core.service.ACPService` and uses its
  registry, store, settings (limits), engine and ``authorize`` hook; A2A requests become engine calls
  (:mod:`.tasks`). Runs, sessions and owners are the same whichever protocol reached them.
* The ``authorize`` hook is called as for ACP: with ``None`` before the body is read, then with the
  agent's name (and with a task's agent when a task is named). ``request.path`` is relative to the
  A2A mount.
* Every answer under the mount is A2A's: a JSON-RPC response on the JSON-RPC path, a
  ``google.rpc.Status`` error elsewhere (an unknown agent, a body over ``max_body_size``, a body that is
  not JSON); never a 5xx for bad input, never a traceback.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from urllib.parse import urlsplit

from acp_adapters.core.agents import AgentDefinition
from acp_adapters.core.bodies import require_json
from acp_adapters.core.engine import RunEngine
from acp_adapters.core.errors import PayloadTooLargeError
from acp_adapters.core.http import Headers, Request, Response, StreamResponse
from acp_adapters.core.responses import cors_headers
from acp_adapters.core.service import ACPService
from acp_adapters.core.settings import Settings

from .card import agent_card
from .errors import A2AError, MethodNotFound, from_acp
from .jsonrpc import error_response as jsonrpc_error
from .jsonrpc import handle_jsonrpc
from .rest import MethodNotAllowed, handle_rest, is_rest_path
from .rest import error_response as rest_error
from .tasks import Caller, TaskOperations
from .wire import Dialect, to_a2a_error

__all__ = ["A2AService"]

_PATH = re.compile(r"/(?P<agent>[^/]+)(?P<rest>/.*)?")
_CARDS = ("/.well-known/agent-card.json", "/.well-known/agent.json")


class NotFound(MethodNotFound):
    """A path under the mount that names no agent, or no path of one."""

    reason = "NOT_FOUND"


class A2AService:
    """Serves every agent of an ACP service's registry over A2A, on the same engine.

    ``acp_url`` is where the ACP mount is (a path on the same host, ``/acp`` by default, or an absolute
    URL): the history of a session a task continues is kept as ACP resources, whose URLs are the ACP
    mount's (``Settings.public_url`` wins when set). Settings (the limits, ``max_listed_tasks`` for
    ``ListTasks`` among them), store and ``authorize`` hook are the ACP service's.

    ``handle`` must be called on the event loop that hosts the ACP service's engine (as
    :meth:`ACPService.handle <acp_adapters.core.service.ACPService.handle>`).
    """

    def __init__(self, acp: ACPService, *, acp_url: str = "/acp") -> None:
        if not isinstance(acp, ACPService):
            raise TypeError(
                f"A2AService takes the ACPService whose engine it shares, not {type(acp).__name__}"
            )
        if not acp_url.startswith(("/", "http://", "https://")):
            raise ValueError(f"acp_url must be a path (/acp) or an absolute URL, not {acp_url!r}")
        self.acp = acp
        self.acp_url = acp_url.rstrip("/")
        self.tasks = TaskOperations(acp.engine, lambda: acp.settings)

    @property
    def settings(self) -> Settings:
        """The ACP service's settings (the limits are the same)."""
        return self.acp.settings

    @property
    def engine(self) -> RunEngine:
        """The ACP service's engine, which runs the tasks."""
        return self.acp.engine

    async def handle(self, request: Request) -> Response | StreamResponse:
        """Answer one request."""
        if request.owner == "":
            request = dataclasses.replace(request, owner=None)
        try:
            response = await self._dispatch(request, _PATH.fullmatch(request.path.rstrip("/") or "/"))
        except Exception as exc:
            return self.error_response(request, exc)
        if self.settings.cors_origins:
            response.headers.extend(_cors(request, self.settings))
        return response

    def error_response(self, request: Request, error: Exception) -> Response:
        """The answer ``error`` (an A2A or ACP error, or anything unexpected) gives to ``request``: a
        JSON-RPC error on the JSON-RPC path, a ``google.rpc.Status`` elsewhere, with the CORS headers.

        For an adapter that refuses a request before handing it over (a Django guard, the CSRF check),
        so that every answer under the mount is A2A's. Pure: any thread may call it.
        """
        match = _PATH.fullmatch(request.path.rstrip("/") or "/")
        jsonrpc = match is not None and not match.group("rest") and request.method.upper() == "POST"
        a2a_error = to_a2a_error(error)
        response = jsonrpc_error(None, a2a_error, Dialect.V1) if jsonrpc else rest_error(a2a_error)
        if self.settings.cors_origins:
            response.headers.extend(_cors(request, self.settings))
        return response

    async def _dispatch(self, request: Request, match: re.Match[str] | None) -> Response | StreamResponse:
        method = request.method.upper()
        if method == "OPTIONS" and self.settings.cors_origins:
            return Response(204, [("access-control-max-age", "600")], b"")
        if match is None:
            raise NotFound(f"no such path: {request.path[:120]!r}; an agent is at /{{agent name}}")
        if len(request.body) > self.settings.max_body_size:
            raise from_acp(PayloadTooLargeError(self.settings.max_body_size))
        if method == "POST":
            require_json(request.headers)
        await self._authorized(request, None)
        agent = self.acp.registry.get(match.group("agent"))
        if agent is None:
            raise NotFound(f"no agent is named {match.group('agent')[:80]!r}")
        await self._authorized(request, agent.name)
        rest = match.group("rest") or ""
        if rest in _CARDS:
            if method not in ("GET", "HEAD"):
                raise _not_allowed(method, "GET")
            url = f"{request.base_url}/{agent.name}"
            return Response(200, [("content-type", "application/json")], agent_card(agent, url).wire_json())
        await self.acp.engine.ensure_started()
        caller = self._caller(request, agent)
        if not rest:
            if method != "POST":
                raise _not_allowed(method, "POST")
            return await handle_jsonrpc(self.tasks, caller, request)
        if is_rest_path(rest):
            return await handle_rest(self.tasks, caller, request, rest)
        raise NotFound(f"no such path: {request.path[:120]!r}")

    def _caller(self, request: Request, agent: AgentDefinition) -> Caller:
        async def authorize(name: str) -> None:
            await self._authorized(request, name)

        return Caller(request.owner, agent, authorize, self._acp_base(request))

    def _acp_base(self, request: Request) -> str:
        """The ACP mount's absolute URL, under which a run's session resources are served."""
        if self.settings.public_url:
            return self.settings.public_url
        if self.acp_url.startswith(("http://", "https://")):
            return self.acp_url
        parts = urlsplit(request.base_url)
        return f"{parts.scheme}://{parts.netloc}{self.acp_url}"

    async def _authorized(self, request: Request, agent: str | None) -> None:
        hook = self.acp.authorize
        if hook is not None:
            outcome = hook(request, agent)
            if inspect.isawaitable(outcome):
                await outcome

    async def aclose(self) -> None:
        """Nothing to stop: the engine is the ACP service's, which stops it."""


def _not_allowed(method: str, allowed: str) -> A2AError:
    return MethodNotAllowed(f"{method[:20]} is not allowed here; use {allowed}", headers=[("allow", allowed)])


def _cors(request: Request, settings: Settings) -> Headers:
    headers = cors_headers(request, settings.cors_origins)
    return [
        (name, "content-type, authorization, a2a-version, a2a-extensions")
        if name == "access-control-allow-headers"
        else (name, value)
        for name, value in headers
    ]
