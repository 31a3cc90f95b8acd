"""The ASGI adapter: Starlette, FastAPI, Litestar, Django's ASGI handler or any ASGI app.

Two forms, one behaviour:

* :class:`ACPApp`, an ASGI app to mount: ``Mount("/acp", app=ACPApp(agents))`` (Starlette),
  ``app.mount("/acp", ACPApp(agents))`` (FastAPI).
* :class:`ACPMiddleware`, which serves the ACP paths under ``prefix`` and hands everything else to
  the app it wraps: ``app = ACPMiddleware(app, agents, prefix="/acp")``.

The engine starts on the server's event loop on the first request (mounted apps get no lifespan
events) and stops at lifespan shutdown when the server sends one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

from .core.agents import AgentRegistry
from .core.http import Request, Response, StreamResponse
from .core.service import ACPService, Authorize
from .core.settings import Settings
from .core.store import Store

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
    ``native`` is the ASGI scope.
    """

    def __init__(
        self,
        registry: AgentRegistry,
        *,
        store: Store | None = None,
        settings: Settings | None = None,
        owner: OwnerOf | None = None,
        authorize: Authorize | None = None,
    ) -> None:
        self.service = ACPService(registry, store=store, settings=settings, authorize=authorize)
        self._owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _serve_lifespan(receive, send, self.service)
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
        response = await self.service.handle(request)
        if isinstance(response, Response):
            await _send_response(send, response)
        else:
            await _send_stream(receive, send, response)


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
    ) -> None:
        self.app = app
        self.prefix = "/" + prefix.strip("/")
        self.acp = ACPApp(registry, store=store, settings=settings, owner=owner, authorize=authorize)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = _relative_path(scope)
            if path == self.prefix or path.startswith(self.prefix + "/"):
                inner = dict(scope, root_path=scope.get("root_path", "") + self.prefix)
                await self.acp.serve(inner, receive, send, path[len(self.prefix) :])
                return
        if scope["type"] == "lifespan":
            await self.app(scope, receive, _close_on_shutdown(send, self.acp.service))
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


async def _serve_lifespan(receive: Receive, send: Send, service: ACPService) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await service.engine.ensure_started()
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await service.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return


def _close_on_shutdown(send: Send, service: ACPService) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "lifespan.shutdown.complete":
            await service.aclose()
        await send(message)

    return wrapped
