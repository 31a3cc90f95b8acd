"""The A2A mount for Django, beside an :class:`~acp_adapters.django.ACPSite` whose agents, engine, owner
function, guard, CSRF check and ``authorize`` hook it shares::

    from acp_adapters.a2a.django import A2ASite
    from acp_adapters.django.views import site  # the default ACP mount (ACP_ADAPTERS)

    urlpatterns = [
        path("acp/", include("acp_adapters.django.urls")),
        path("a2a/", A2ASite(site).urls),
    ]

Under ASGI and WSGI alike, as the ACP site: the request is answered where the ACP site runs its
service (the server's loop, or the process's loop thread, which the A2A mount then uses too), so the
two mounts always share one engine.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from django.http import HttpRequest, HttpResponseBase, StreamingHttpResponse
from django.urls import URLPattern

from acp_adapters.bridge import SyncBridge, SyncStreamResponse, loop_outlives_request
from acp_adapters.core.errors import ACPError
from acp_adapters.core.http import StreamResponse
from acp_adapters.django.views import (
    ACPSite,
    _body,
    _ClosingStream,
    _headers,
    _response,
    _ServerModePattern,
)

from .service import A2AService

__all__ = ["A2ASite"]


class A2ASite:
    """The agents of an ACP site over A2A: ``path("a2a/", A2ASite(acp_site).urls)``.

    ``acp_url`` is where the ACP site is mounted (a path on the same host, or an absolute URL), for the
    URLs of session history (see :class:`~acp_adapters.a2a.service.A2AService`). ``name`` is the URL
    namespace (``reverse("a2a:api", kwargs={"path": "echo"})``).
    """

    def __init__(self, acp: ACPSite, *, acp_url: str = "/acp", name: str = "a2a") -> None:
        if not isinstance(acp, ACPSite):
            raise TypeError(
                f"A2ASite(acp) needs the ACPSite whose agents and engine it serves, not {type(acp).__name__}"
            )
        if not isinstance(name, str) or not name:
            raise TypeError(f"A2ASite(name=...) needs a URL namespace such as 'a2a', not {name!r}")
        if not acp_url.startswith(("/", "http://", "https://")):
            raise ValueError(f"acp_url must be a path (/acp) or an absolute URL, not {acp_url!r}")
        self.acp = acp
        self.acp_url = acp_url
        self.name = name
        self._service: A2AService | None = None
        self._bridge: SyncBridge | None = None
        self._lock = threading.Lock()

        def sync_view(request: HttpRequest, path: str) -> HttpResponseBase:
            return self.serve(request, path)

        async def async_view(request: HttpRequest, path: str) -> HttpResponseBase:
            return await self.aserve(request, path)

        self.sync_view, self.async_view = acp._mark(sync_view), acp._mark(async_view)

    @property
    def urlpatterns(self) -> list[URLPattern]:
        """The URL patterns of the mount (one, named ``api``, that takes every path)."""
        return [_ServerModePattern(self.sync_view, self.async_view, name="api")]

    @property
    def urls(self) -> tuple[list[URLPattern], str, str]:
        """For ``path("a2a/", site.urls)``: the patterns, the app name ``a2a`` and the namespace."""
        return self.urlpatterns, "a2a", self.name

    @property
    def service(self) -> A2AService:
        """The A2A service, on the ACP site's service, made on first use."""
        acp_service = self.acp.service
        with self._lock:
            if self._service is None or self._service.acp is not acp_service:  # (the site was closed)
                self._service, self._bridge = A2AService(acp_service, acp_url=self.acp_url), None
            return self._service

    @property
    def bridge(self) -> SyncBridge:
        """The bridge to the process's loop, where the ACP site's bridge runs its service."""
        service = self.service
        self.acp.bridge  # noqa: B018 - from now on the ACP site runs its service there too
        with self._lock:
            if self._bridge is None:
                self._bridge = SyncBridge(service)
            return self._bridge

    def serve(self, request: HttpRequest, path: str) -> HttpResponseBase:
        """Answer ``request`` (WSGI); ``path`` is what follows the mount's prefix."""
        try:
            owner = self.acp._identify(request)
            body = _body(request, self.acp.settings.max_body_size)
        except ACPError as exc:
            return _response(self.service.error_response(self.acp._request(request, path), exc))
        answer = self.bridge.handle(self.acp._request(request, path, owner, body))
        if isinstance(answer, SyncStreamResponse):
            return StreamingHttpResponse(answer.body, status=answer.status, headers=_headers(answer.headers))
        return _response(answer)

    async def aserve(self, request: HttpRequest, path: str) -> HttpResponseBase:
        """Answer ``request`` (ASGI), where the ACP site runs its service."""
        try:
            owner = await self.acp._aidentify(request)
            body = _body(request, self.acp.settings.max_body_size)
        except ACPError as exc:
            return _response(self.service.error_response(self.acp._request(request, path), exc))
        neutral = self.acp._request(request, path, owner, body)
        scope: Any = getattr(request, "scope", None)
        if self.acp._bridge is None and loop_outlives_request(scope):
            answer = await self.service.handle(neutral)
        else:
            answer = await self.bridge.ahandle(neutral)
        if isinstance(answer, StreamResponse):
            stream = _ClosingStream(answer.body, asyncio.get_running_loop())
            return StreamingHttpResponse(stream, status=answer.status, headers=_headers(answer.headers))
        return _response(answer)
