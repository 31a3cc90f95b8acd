"""A request to Django's own ASGI handler in process, without a server: its scope, and the ``receive``
of a client that sends its body whole and then stays."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


def http_scope(method: str, path: str) -> dict[str, Any]:
    """The scope of an HTTP/1.1 request from 127.0.0.1 to ``path`` on testserver, with a JSON body."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def receive_body(body: bytes, gone: asyncio.Event | None = None) -> Callable[[], Awaitable[dict[str, Any]]]:
    """A ``receive`` that gives ``body`` whole, then waits until ``gone`` is set (for ever without it)
    to tell of the client's disconnection."""
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": body}
        await (gone or asyncio.Event()).wait()
        return {"type": "http.disconnect"}

    return receive
