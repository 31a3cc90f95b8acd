"""The ACP API as a WSGI app, and a WSGI middleware serving it under a prefix.

:class:`ACPWSGIApp` mounts anywhere a WSGI app mounts (Werkzeug's ``DispatcherMiddleware``, Bottle's
``mount``, Pyramid's ``wsgiapp``, a ``SCRIPT_NAME`` set by the server): the path it serves is
``PATH_INFO``, the mount point is ``SCRIPT_NAME``. :class:`ACPWSGIMiddleware` wraps a host's WSGI app
and serves the ACP paths under a prefix itself. Both run the core on the process's event loop
through :mod:`acp_adapters.bridge`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ._wsgi_environ import request_from_environ, start_response_for
from .bridge import SyncBridge
from .core.agents import AgentRegistry
from .core.arguments import check_prefix, check_wrapped_app
from .core.build import build_service
from .core.executors import Executor
from .core.service import ACPService, Authorize
from .core.settings import Settings
from .core.store import Store
from .workers import warn_if_store_not_shared

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["ACPWSGIApp", "ACPWSGIMiddleware"]


class ACPWSGIApp:
    """The ACP API as a WSGI app, to mount under any prefix.

    ``owner`` maps the WSGI environ to the caller's identity as the host's auth established it
    (for instance ``lambda environ: environ.get("REMOTE_USER")``); runs, sessions and resources are
    scoped to it. ``authorize(request, agent)`` is the core's authorization hook (see
    :class:`~acp_adapters.core.service.ACPService`); the request's ``native`` is the WSGI environ.
    It runs on the bridge's event loop: a sync hook must not block.
    """

    def __init__(
        self,
        registry: AgentRegistry,
        *,
        store: Store | None = None,
        settings: Settings | None = None,
        owner: Callable[[WSGIEnvironment], str | None] | None = None,
        authorize: Authorize | None = None,
        executor: Executor | None = None,
    ) -> None:
        service = build_service(
            "ACPWSGIApp",
            registry,
            store=store,
            settings=settings,
            owner=owner,
            authorize=authorize,
            executor=executor,
        )
        self._serve_service(service, owner)

    @classmethod
    def _of_service(
        cls, service: ACPService, owner: Callable[[WSGIEnvironment], str | None] | None
    ) -> ACPWSGIApp:
        """The app of a service made already (by :class:`ACPWSGIMiddleware`, in whose name it was checked)."""
        app = cls.__new__(cls)
        app._serve_service(service, owner)
        return app

    def _serve_service(
        self, service: ACPService, owner: Callable[[WSGIEnvironment], str | None] | None
    ) -> None:
        self.service = service
        self.bridge = SyncBridge(service)
        self.owner = owner
        warn_if_store_not_shared(service.store)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        owner = self.owner(environ) if self.owner is not None else None
        request = request_from_environ(
            environ, max_body_size=self.service.settings.max_body_size, owner=owner
        )
        return start_response_for(self.bridge.handle(request), start_response)

    def close(self) -> None:
        """Stop the service (it also stops by itself at process exit)."""
        self.bridge.close()


class ACPWSGIMiddleware:
    """Serves the ACP API under ``prefix`` and passes every other path to ``app``; the other arguments
    are :class:`ACPWSGIApp`'s.

    >>> app.wsgi_app = ACPWSGIMiddleware(app.wsgi_app, agents, prefix="/acp")  # doctest: +SKIP
    """

    def __init__(
        self,
        app: WSGIApplication,
        registry: AgentRegistry,
        *,
        prefix: str = "/acp",
        store: Store | None = None,
        settings: Settings | None = None,
        owner: Callable[[WSGIEnvironment], str | None] | None = None,
        authorize: Authorize | None = None,
        executor: Executor | None = None,
    ) -> None:
        check_wrapped_app("ACPWSGIMiddleware", app, "WSGI")
        check_prefix("ACPWSGIMiddleware", prefix)
        service = build_service(
            "ACPWSGIMiddleware",
            registry,
            store=store,
            settings=settings,
            owner=owner,
            authorize=authorize,
            executor=executor,
        )
        self.app = app
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.acp = ACPWSGIApp._of_service(service, owner)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path != self.prefix and not path.startswith(self.prefix + "/"):
            return self.app(environ, start_response)
        mounted = {
            **environ,
            "SCRIPT_NAME": environ.get("SCRIPT_NAME", "") + self.prefix,
            "PATH_INFO": path[len(self.prefix) :],
        }
        return self.acp(mounted, start_response)

    def close(self) -> None:
        """Stop the ACP service."""
        self.acp.close()
