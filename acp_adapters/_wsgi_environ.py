"""Translation between a WSGI environ and the core's neutral request and response.

Shared by the WSGI app (:mod:`acp_adapters.wsgi`), Flask (:mod:`acp_adapters.flask`) and Django
(:mod:`acp_adapters.django.views`), which all receive a PEP 3333 environ (or Django's ``request.META``);
not a public API.
"""

from __future__ import annotations

import http
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .bridge import SyncStreamResponse
from .core.http import Request, Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = [
    "drop_excess",
    "headers_from_environ",
    "mount_url",
    "read_body",
    "request_from_environ",
    "start_response_for",
]

_READ_SIZE = 64 * 1024
#: How far over ``max_body_size`` a declared body is still read (and dropped) before the 413.
_DRAIN_AT_MOST = 1024 * 1024
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
    declared = remaining
    remaining = min(remaining, limit + 1)
    chunks: list[bytes] = []
    while remaining > 0 and stream is not None:
        chunk = stream.read(min(remaining, _READ_SIZE))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    if stream is not None:
        drop_excess(stream.read, declared - (limit + 1), over_by=declared - limit)
    return b"".join(chunks)


def drop_excess(read: Callable[[int], bytes], unread: int, *, over_by: int) -> None:
    """Read and drop the ``unread`` bytes left of a body declared ``over_by`` bytes over the limit, if
    that is at most a MiB: a server that closes the connection with a body unread (gunicorn) makes the
    client, still sending, see a reset instead of the 413. A body further over is left unread."""
    if over_by <= 0 or over_by > _DRAIN_AT_MOST:
        return
    while unread > 0:
        chunk = read(min(unread, _READ_SIZE))
        if not chunk:
            return
        unread -= len(chunk)


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
