"""The ASGI adapter: Starlette, FastAPI, Litestar, Django's ASGI handler or any ASGI app.

Two forms, one behaviour:

* :class:`ACPApp`, an ASGI app to mount: ``Mount("/acp", app=ACPApp(agents))`` (Starlette),
  ``app.mount("/acp", ACPApp(agents))`` (FastAPI).
* :class:`ACPMiddleware`, which serves the ACP paths under ``prefix`` and hands everything else to
  the app it wraps: ``app = ACPMiddleware(app, agents, prefix="/acp")``.

The engine starts on the server's event loop at lifespan start-up (:meth:`ACPApp.startup`; a mounted
app gets no lifespan events: the host's lifespan calls it, or the first request starts it) and stops
at lifespan shutdown when the server sends one. A loop that may end with its request
(a test client's: Starlette's ``TestClient`` without ``with`` runs each request on a loop of its own)
does not host runs: then the engine runs on the process's own loop thread (:mod:`acp_adapters.bridge`),
and async runs, resumes and cancels work across requests all the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

from .bridge import SyncBridge, loop_outlives_request
from .core.agents import AgentRegistry
from .core.arguments import check_prefix, check_wrapped_app
from .core.build import build_service
from .core.executors import Executor
from .core.http import Request, Response, StreamResponse
from .core.service import ACPService, Authorize
from .core.settings import Settings
from .core.store import Store
from .workers import warn_if_store_not_shared

__all__ = ["ACPApp", "ACPMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
OwnerOf = Callable[[Scope], "str | None"]


class ACPApp:
    """The ACP API as an ASGI app.

    ``owner`` maps the ASGI scope to the caller's identity (for instance
    ``lambda scope: scope["user"].identity`` behind Starlette's AuthenticationMiddleware); runs,
    sessions and resources are then visible to their owner only. ``authorize(request, agent)`` is the
    core's authorization hook (see :class:`~acp_adapters.core.service.ACPService`); the request's
    ``native`` is the ASGI scope. ``executor`` hands the runs to other processes instead of executing
    them on this server's loop (``acp_adapters.celery.CeleryExecutor``: docs/celery.md).
    """

    def __init__(
        self,
        registry: AgentRegistry,
        *,
        store: Store | None = None,
        settings: Settings | None = None,
        owner: OwnerOf | None = None,
        authorize: Authorize | None = None,
        executor: Executor | None = None,
    ) -> None:
        service = build_service(
            "ACPApp",
            registry,
            store=store,
            settings=settings,
            owner=owner,
            authorize=authorize,
            executor=executor,
        )
        self._serve_service(service, owner)

    @classmethod
    def _of_service(cls, service: ACPService, owner: OwnerOf | None) -> ACPApp:
        """The app of a service made already (by :class:`ACPMiddleware`, in whose name it was checked)."""
        app = cls.__new__(cls)
        app._serve_service(service, owner)
        return app

    def _serve_service(self, service: ACPService, owner: OwnerOf | None) -> None:
        self.service = service
        warn_if_store_not_shared(service.store)  # uvicorn --workers 2 with the in-memory store
        self._owner = owner
        #: The loop that hosts the engine, if the server's; else the bridge to the process's loop.
        self._host_loop: asyncio.AbstractEventLoop | None = None
        self._bridge: SyncBridge | None = None
        #: Set while a lifespan says the server's loop lives on.
        self.lifespan_started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _serve_lifespan(receive, send, self)
        elif scope["type"] == "http":
            await self.serve(scope, receive, send, _relative_path(scope))

    async def serve(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        """Answer one HTTP request whose path relative to the mount is ``path``."""
        body = await _read_body(receive, self.service.settings.max_body_size + 1)
        request = Request(
            method=scope["method"],
            path=path or "/",
            base_url=_base_url(scope),
            query=scope.get("query_string", b"").decode("latin-1"),
            headers={
                name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
            },
            body=body,
            owner=self._owner(scope) if self._owner else None,
            native=scope,
        )
        if self._hosts_here(scope):
            response = await self.service.handle(request)
        else:
            assert self._bridge is not None
            response = await self._bridge.ahandle(request)
        if isinstance(response, Response):
            await _send_response(send, response)
        else:
            await _send_stream(receive, send, response)

    def _hosts_here(self, scope: Scope) -> bool:
        """Whether this request's loop hosts the engine; else :attr:`_bridge` does (from then on)."""
        if self._bridge is not None:
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # trio: the engine needs asyncio
            loop = None
        if loop is not None and loop is self._host_loop:
            return True
        if loop is not None and (self.lifespan_started or loop_outlives_request(scope)):
            self._host_loop = loop
            return True
        self._bridge = SyncBridge(self.service)
        return False

    async def startup(self) -> None:
        """Start the engine (and its store's connections) on the running loop now, not on the first
        request: the loop must be the server's, which outlives its requests.

        The app's own lifespan does it, and :class:`ACPMiddleware`'s; a mounted app gets no lifespan
        events (Starlette's ``Mount``, FastAPI's ``mount``): call it from the host app's lifespan.
        """
        if self.bridged:  # a request came before (a test client's): its service ends
            await self.aclose()
        await self.service.engine.ensure_started()
        self.lifespan_started = True

    @property
    def bridged(self) -> bool:
        """Whether the engine runs on the process's loop thread (a test client's loop reached it first)."""
        return self._bridge is not None

    async def aclose(self) -> None:
        """Stop the engine (its runs end) where it runs: on this loop, or on the bridge's."""
        self.lifespan_started = False
        self._host_loop = None
        bridge, self._bridge = self._bridge, None
        if bridge is not None:
            await anyio.to_thread.run_sync(bridge.close)
        else:
            await self.service.aclose()


class ACPMiddleware:
    """Serves the ACP API under ``prefix`` and passes every other request to ``app``; the other
    arguments are :class:`ACPApp`'s."""

    def __init__(
        self,
        app: ASGIApp,
        registry: AgentRegistry,
        *,
        prefix: str = "/acp",
        store: Store | None = None,
        settings: Settings | None = None,
        owner: OwnerOf | None = None,
        authorize: Authorize | None = None,
        executor: Executor | None = None,
    ) -> None:
        check_wrapped_app("ACPMiddleware", app, "ASGI")
        check_prefix("ACPMiddleware", prefix)
        service = build_service(
            "ACPMiddleware",
            registry,
            store=store,
            settings=settings,
            owner=owner,
            authorize=authorize,
            executor=executor,
        )
        self.app = app
        self.prefix = "/" + prefix.strip("/")
        self.acp = ACPApp._of_service(service, owner)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = _relative_path(scope)
            if path == self.prefix or path.startswith(self.prefix + "/"):
                inner = dict(scope, root_path=scope.get("root_path", "") + self.prefix)
                await self.acp.serve(inner, receive, send, path[len(self.prefix) :])
                return
        if scope["type"] == "lifespan":
            await self.app(scope, receive, _follow_lifespan(send, self.acp))
            return
        await self.app(scope, receive, send)


def _relative_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _base_url(scope: Scope) -> str:
    scheme = scope.get("scheme", "http")
    host = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"host"), None)
    if host is None:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] in (None, 80, 443) else f"{server[0]}:{server[1]}"
    return f"{scheme}://{host}{scope.get('root_path', '').rstrip('/')}"


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if size >= limit or not message.get("more_body", False):
            break
    return b"".join(chunks)


def _start(status: int, headers: list[tuple[str, str]]) -> Message:
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers],
    }


async def _send_response(send: Send, response: Response) -> None:
    headers = [*response.headers, ("content-length", str(len(response.body)))]
    await send(_start(response.status, headers))
    await send({"type": "http.response.body", "body": response.body})


async def _send_stream(receive: Receive, send: Send, response: StreamResponse) -> None:
    """Write the stream until it ends or the client goes away (which ends only the subscription)."""
    body = response.body

    async def watch_disconnect(scope: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(watch_disconnect, group.cancel_scope)
            await send(_start(response.status, response.headers))
            async for chunk in body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            group.cancel_scope.cancel()
    except OSError:
        pass  # the client went away while we wrote
    finally:
        aclose = getattr(body, "aclose", None)
        if aclose is not None:
            with anyio.CancelScope(shield=True):
                await aclose()


async def _serve_lifespan(receive: Receive, send: Send, app: ACPApp) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await app.startup()
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await app.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return


def _follow_lifespan(send: Send, app: ACPApp) -> Send:
    """The wrapped app's lifespan ``send``: the service starts with the app (the server's loop lives
    on once started), and stops at shutdown."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "lifespan.startup.complete":
            try:
                await app.startup()
            except Exception as exc:
                message = {"type": "lifespan.startup.failed", "message": str(exc)}
        elif message["type"] == "lifespan.shutdown.complete":
            await app.aclose()
        await send(message)

    return wrapped
