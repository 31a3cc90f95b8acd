"""The neutral HTTP boundary between the core and the framework adapters.

An adapter turns its native request into a :class:`Request`, calls
:meth:`acp_adapters.core.service.ACPService.handle`, and writes back the :class:`Response` or
:class:`StreamResponse` it gets. Routing, validation, error mapping and SSE framing all happen in the
core, so that every framework answers byte for byte the same.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Headers", "Request", "Response", "StreamResponse"]

Headers = list[tuple[str, str]]


@dataclass(frozen=True)
class Request:
    """A request as the core sees it.

    ``path`` is relative to where the ACP API is mounted and starts with ``/`` (``/runs``).
    ``base_url`` is the absolute URL of the mount point without a trailing slash
    (``http://host:8000/acp``): the server builds the URLs it hands out (session resources) from it.
    ``headers`` has lower-case names. ``owner`` is the identity the host's auth gives the caller,
    or ``None``; runs, sessions and resources record it and only their owner may see them (the
    service treats ``""`` as ``None``). ``native`` is the framework's own request (the ASGI scope, the
    WSGI environ, Flask's or Django's request object), for an ``authorize`` hook that needs more than
    the headers; the core never reads it.
    """

    method: str
    path: str
    base_url: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    owner: str | None = None
    native: Any = None


@dataclass
class Response:
    """A complete answer."""

    status: int
    headers: Headers
    body: bytes


@dataclass
class StreamResponse:
    """An answer whose body is produced while the run goes on (``text/event-stream``).

    ``body`` yields chunks of bytes already framed as server-sent events. An adapter iterates it
    and closes it (``aclose``) when the client goes away: that ends the subscription, never the run.
    """

    status: int
    headers: Headers
    body: AsyncIterator[bytes]
