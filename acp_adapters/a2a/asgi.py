"""The A2A mount for ASGI (Starlette, FastAPI, any ASGI app), beside an :class:`~acp_adapters.asgi.ACPApp`
whose engine it shares.

Two forms, one behaviour, like the ACP mount's:

* :class:`A2AApp`, an ASGI app to mount::

      acp = ACPApp(agents)
      app = Starlette(routes=[Mount("/acp", app=acp), Mount("/a2a", app=A2AApp(acp))])

* :class:`A2AMiddleware`, which serves the A2A paths under ``prefix`` and hands everything else to the
  app it wraps: ``app = A2AMiddleware(app, acp, prefix="/a2a")``.

The engine runs where the ACP app runs it (the server's loop, or the process's loop thread when a
test client's loop reached it first), whichever mount a request comes through first: the A2A mount
asks the ACP app, and runs its own answers there too. Its owner function is the ACP app's.
"""

from __future__ import annotations

from acp_adapters.asgi import (
    ACPApp,
    ASGIApp,
    Receive,
    Scope,
    Send,
    _base_url,
    _follow_lifespan,
    _read_body,
    _relative_path,
    _send_response,
    _send_stream,
    _serve_lifespan,
)
from acp_adapters.bridge import SyncBridge
from acp_adapters.core.arguments import check_prefix, check_wrapped_app
from acp_adapters.core.http import Request, Response, StreamResponse

from .service import A2AService

__all__ = ["A2AApp", "A2AMiddleware"]


class A2AApp:
    """Every agent of an :class:`~acp_adapters.asgi.ACPApp` over A2A, as an ASGI app.

    ``acp_url`` is where the ACP app is mounted (a path on the same host, or an absolute URL) and
    settings, store, owner function and ``authorize`` hook are the ACP app's (see
    :class:`~acp_adapters.a2a.service.A2AService`).
    """

    def __init__(self, acp: ACPApp, *, acp_url: str = "/acp") -> None:
        if not isinstance(acp, ACPApp):
            raise TypeError(
                "A2AApp takes the ACPApp whose agents and engine it serves (A2AApp(acp)), "
                f"not {type(acp).__name__}"
            )
        self.acp = acp
        self.service = A2AService(acp.service, acp_url=acp_url)
        #: The bridge to the process's loop, made once the ACP app's engine runs there.
        self._bridge: SyncBridge | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # (mounted at the top: the ACP app's engine starts with it)
            await _serve_lifespan(receive, send, self.acp)
        elif scope["type"] == "http":
            await self.serve(scope, receive, send, _relative_path(scope))

    async def serve(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        """Answer one HTTP request whose path relative to the mount is ``path``."""
        body = await _read_body(receive, self.service.settings.max_body_size + 1)
        owner_of = self.acp._owner
        request = Request(
            method=scope["method"],
            path=path or "/",
            base_url=_base_url(scope),
            query=scope.get("query_string", b"").decode("latin-1"),
            headers={
                name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
            },
            body=body,
            owner=owner_of(scope) if owner_of else None,
            native=scope,
        )
        response = await self._answer(scope, request)
        if isinstance(response, Response):
            await _send_response(send, response)
        else:
            await _send_stream(receive, send, response)

    async def _answer(self, scope: Scope, request: Request) -> Response | StreamResponse:
        """The answer, made on the loop that hosts the ACP app's engine."""
        if self.acp._hosts_here(scope):
            return await self.service.handle(request)
        if self._bridge is None:
            # A bridge of its own to the same process loop, answering with the A2A service (which a
            # bridge closes at exit with ``aclose``: a no-op, the engine is the ACP service's).
            self._bridge = SyncBridge(self.service)
        return await self._bridge.ahandle(request)


class A2AMiddleware:
    """Serves A2A under ``prefix`` for the agents of ``acp`` and passes every other request to ``app``;
    the other arguments are :class:`A2AApp`'s."""

    def __init__(
        self,
        app: ASGIApp,
        acp: ACPApp,
        *,
        prefix: str = "/a2a",
        acp_url: str = "/acp",
    ) -> None:
        check_wrapped_app("A2AMiddleware", app, "ASGI")
        check_prefix("A2AMiddleware", prefix)
        self.app = app
        self.prefix = "/" + prefix.strip("/")
        self.a2a = A2AApp(acp, acp_url=acp_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = _relative_path(scope)
            if path == self.prefix or path.startswith(self.prefix + "/"):
                inner = dict(scope, root_path=scope.get("root_path", "") + self.prefix)
                await self.a2a.serve(inner, receive, send, path[len(self.prefix) :])
                return
        if scope["type"] == "lifespan":
            await self.app(scope, receive, _follow_lifespan(send, self.a2a.acp))
            return
        await self.app(scope, receive, send)
