"""Django under ASGI: a body over ``max_body_size`` is refused before Django reads it.

Django's ``ASGIHandler`` reads the whole request body (into a temporary file, on disk past
``FILE_UPLOAD_MAX_MEMORY_SIZE``) before any middleware or view runs, so the ACP views alone could
answer 413 only once a 200 MiB body had been received. Wrapping the application fixes that for the
ACP mounts, and leaves every other path of the project as it was::

    # myproject/asgi.py
    from django.core.asgi import get_asgi_application

    from acp_adapters.django import asgi_body_limit

    application = asgi_body_limit(get_asgi_application())

For a request to an ACP mount (found by resolving its path with the project's URLconf): a
``Content-Length`` over the mount's ``max_body_size`` is refused without reading a byte, and a chunked
body is read up to ``max_body_size + 1`` bytes only. Django then sees that much of the body, the view
answers 413 through the core, and the response closes the connection (``Connection: close``) rather
than letting the server read the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings as django_settings
from django.urls import Resolver404, resolve

__all__ = ["asgi_body_limit"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def asgi_body_limit(application: ASGIApp) -> ASGIApp:
    """``application`` (Django's ASGI application), with the request bodies of its ACP mounts
    bounded by their ``max_body_size`` before Django reads them."""

    async def bounded(scope: Scope, receive: Receive, send: Send) -> None:
        limit = _body_limit(scope) if scope["type"] == "http" else None
        if limit is None:
            await application(scope, receive, send)
            return
        body = _BoundedBody(receive, send, limit, _content_length(scope))
        await application(scope, body.receive, body.send)

    return bounded


def _body_limit(scope: Scope) -> int | None:
    """The ``max_body_size`` of the ACP mount that serves ``scope``'s path, or ``None``."""
    path: str = scope.get("path", "")
    # Django's ASGIRequest: the script prefix is FORCE_SCRIPT_NAME or the scope's root_path.
    prefix = django_settings.FORCE_SCRIPT_NAME or scope.get("root_path", "")
    if prefix:
        path = path.removeprefix(prefix)
    try:
        match = resolve(path)
    except Resolver404:
        return None
    site = getattr(match.func, "acp_site", None)
    return None if site is None else int(site.settings.max_body_size)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class _BoundedBody:
    """The ``receive`` and ``send`` Django gets: the body ends after ``limit + 1`` bytes (or at once,
    empty, when ``Content-Length`` is over ``limit``), and the rest is never asked of the server."""

    def __init__(self, receive: Receive, send: Send, limit: int, declared: int | None) -> None:
        self._receive, self._send = receive, send
        self._limit = limit
        self._received = 0
        self._ended = False
        self._cut = declared is not None and declared > limit

    async def receive(self) -> Message:
        if self._cut:
            if not self._ended:
                self._ended = True
                # Nothing is read: the view sees Content-Length over the limit and answers 413.
                return {"type": "http.request", "body": b"", "more_body": False}
            # Django listens for the client's disconnect after the body; asking the server would
            # hand it the rest of the body. It cancels this wait when the response is sent.
            await asyncio.Future()
        message = await self._receive()
        if message["type"] != "http.request":
            return message
        chunk: bytes = message.get("body", b"")
        room = self._limit + 1 - self._received
        self._received += len(chunk)
        if self._received > self._limit:
            self._cut = self._ended = True
            return {"type": "http.request", "body": chunk[:room], "more_body": False}
        return message

    async def send(self, message: Message) -> None:
        if self._cut and message["type"] == "http.response.start":
            # The rest of the body is unread: close the connection rather than have the server read
            # (and throw away) the rest to keep it alive.
            headers = [*message.get("headers", ()), (b"connection", b"close")]
            message = {**message, "headers": headers}
        await self._send(message)
