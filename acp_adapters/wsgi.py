"""The ACP API as a WSGI app, and a WSGI middleware serving it under a prefix.

:class:`ACPWSGIApp` mounts anywhere a WSGI app mounts (Werkzeug's ``DispatcherMiddleware``, Bottle's
``mount``, Pyramid's ``wsgiapp``, a ``SCRIPT_NAME`` set by the server): the path it serves is
``PATH_INFO``, the mount point is ``SCRIPT_NAME``. :class:`ACPWSGIMiddleware` wraps a host's WSGI app
and serves the ACP paths under a prefix itself. Both run the core on the process's event loop
through :mod:`acp_adapters.bridge`.
"""

from __future__ import annotations

import http
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .bridge import SyncBridge, SyncStreamResponse
from .core.agents import AgentRegistry
from .core.arguments import check_prefix, check_service_arguments, check_wrapped_app
from .core.http import Request, Response
from .core.service import ACPService, Authorize
from .core.settings import Settings
from .core.store import Store
from .workers import server_worker_count, warn_if_store_not_shared

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "ACPWSGIApp",
    "ACPWSGIMiddleware",
    "headers_from_environ",
    "read_body",
    "request_from_environ",
    "server_worker_count",
    "start_response_for",
    "warn_if_store_not_shared",
]

logger = logging.getLogger("acp_adapters")

_READ_SIZE = 64 * 1024
_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in http.HTTPStatus}


def _wsgi_text(value: str) -> str:
    # PEP 3333 hands paths over as bytes decoded as latin-1; URLs are UTF-8.
    return value.encode("latin-1").decode("utf-8", "replace")


def mount_url(environ: WSGIEnvironment, mount: str = "") -> str:
    """The absolute URL of ``SCRIPT_NAME`` + ``mount``, without a trailing slash (PEP 3333's recipe)."""
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST")
    if not host:
        host = environ.get("SERVER_NAME", "localhost")
        port = str(environ.get("SERVER_PORT", ""))
        if port and port != {"https": "443", "http": "80"}.get(scheme):
            host = f"{host}:{port}"
    path = quote((environ.get("SCRIPT_NAME", "") + mount).encode("latin-1"))
    return f"{scheme}://{host}{path}".rstrip("/")


def read_body(environ: WSGIEnvironment, limit: int) -> bytes:
    """The request body, but never more than ``limit + 1`` bytes (enough for the core to answer 413)."""
    stream = environ.get("wsgi.input")
    try:
        remaining: int | None = max(int(environ.get("CONTENT_LENGTH") or ""), 0)
    except ValueError:
        remaining = None
    if remaining is None:
        # No length: a chunked body, readable to its end only when the server says so (PEP 3333).
        remaining = limit + 1 if environ.get("wsgi.input_terminated") else 0
    remaining = min(remaining, limit + 1)
    chunks: list[bytes] = []
    while remaining > 0 and stream is not None:
        chunk = stream.read(min(remaining, _READ_SIZE))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def request_from_environ(
    environ: WSGIEnvironment,
    *,
    max_body_size: int,
    mount: str = "",
    body: bytes | None = None,
    owner: str | None = None,
    native: Any = None,
) -> Request:
    """The neutral request for ``environ``.

    The ACP API is mounted at ``SCRIPT_NAME`` + ``mount`` (``mount`` is the part of ``PATH_INFO``
    that belongs to the mount, for frameworks that route inside one WSGI app). ``body`` replaces
    reading ``wsgi.input`` when the framework has read it already. ``native`` (default: ``environ``)
    is what the ``authorize`` hook sees as ``request.native``.
    """
    path = _wsgi_text(environ.get("PATH_INFO", ""))[len(mount) :] or "/"
    return Request(
        method=environ.get("REQUEST_METHOD", "GET").upper(),
        path=path,
        base_url=mount_url(environ, mount),
        query=environ.get("QUERY_STRING", ""),
        headers=headers_from_environ(environ),
        body=read_body(environ, max_body_size) if body is None else body,
        owner=owner,
        native=environ if native is None else native,
    )


def headers_from_environ(environ: Mapping[str, Any]) -> dict[str, str]:
    """The request headers of a WSGI environ (or of Django's ``request.META``), lower-case names."""
    headers = {
        key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")
    }
    content_type = environ.get("CONTENT_TYPE")
    if content_type and not (content_type == "text/plain" and _fills_in_content_type(environ)):
        headers["content-type"] = content_type
    if environ.get("CONTENT_LENGTH"):
        headers["content-length"] = environ["CONTENT_LENGTH"]
    return headers


def _fills_in_content_type(environ: Mapping[str, Any]) -> bool:
    """Whether the server is wsgiref's (Django's ``runserver``), which sets ``CONTENT_TYPE`` to
    ``text/plain`` when a request has none: that ``text/plain`` is no type at all (the official
    Python client sends none)."""
    return str(environ.get("SERVER_SOFTWARE", "")).startswith("WSGIServer/")


def start_response_for(
    response: Response | SyncStreamResponse, start_response: StartResponse
) -> Iterable[bytes]:
    """Start the WSGI response and return its iterable (a stream's iterable has ``close()``)."""
    status = _STATUS_LINES.get(response.status) or str(response.status)
    start_response(status, list(response.headers))
    return response.body if isinstance(response, SyncStreamResponse) else [response.body]


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
    ) -> None:
        check_service_arguments(
            "ACPWSGIApp", registry, store=store, settings=settings, owner=owner, authorize=authorize
        )
        self.service = ACPService(registry, store=store, settings=settings, authorize=authorize)
        self.bridge = SyncBridge(self.service)
        self.owner = owner
        warn_if_store_not_shared(store)

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
    ) -> None:
        check_wrapped_app("ACPWSGIMiddleware", app, "WSGI")
        check_prefix("ACPWSGIMiddleware", prefix)
        check_service_arguments(
            "ACPWSGIMiddleware", registry, store=store, settings=settings, owner=owner, authorize=authorize
        )
        self.app = app
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.acp = ACPWSGIApp(registry, store=store, settings=settings, owner=owner, authorize=authorize)

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
