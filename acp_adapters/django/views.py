"""The ACP API as Django views: ``HttpRequest`` in, the core's answer out, under ASGI and WSGI alike.

A mount is one URL pattern that catches every path under its prefix and hands the rest of the path
to the core, so routing, trailing slashes and 404s are the core's, whatever ``APPEND_SLASH`` says.
Django's middleware (sessions, ``AuthenticationMiddleware``...) runs before the views: the owner
function and the guard read what it established. The views are exempt from ``CsrfViewMiddleware``
and ``LoginRequiredMiddleware`` and do their job themselves: Django's CSRF check for the requests
the session authenticates (:mod:`acp_adapters.django.csrf`), the guard for access. Every answer,
refusals included, is the core's (:meth:`ACPService.error_response`), with its CORS and
``WWW-Authenticate`` headers.

One handling, two ways to run it:

* under ASGI (``ASGIHandler``: uvicorn, daphne, hypercorn) the async view awaits the service on the
  server's event loop, and a stream is a ``StreamingHttpResponse`` over an async iterator;
* under WSGI (``WSGIHandler``: gunicorn, mod_wsgi, ``runserver``) the sync view hands the request
  to the process's event loop thread (:mod:`acp_adapters.bridge`), and a stream is a
  ``StreamingHttpResponse`` over a sync iterator (Django would buffer an async one whole).

Which of the two serves a request is decided when Django resolves its URL: ``ASGIHandler`` resolves
on its event loop, ``WSGIHandler`` in a thread that runs none. A loop that may end with its request
(``AsyncClient``'s, one per test) does not host runs: the async view then hands the request to the
bridge's loop too, so ``Client`` and ``AsyncClient`` share one service, also within one test.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from asgiref.sync import sync_to_async
from django.apps import apps
from django.contrib.auth import decorators as auth_decorators
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.urls import URLPattern, get_resolver
from django.urls.resolvers import RegexPattern, ResolverMatch

from acp_adapters._wsgi_environ import drop_excess, headers_from_environ, read_body
from acp_adapters.bridge import SyncBridge, SyncStreamResponse, loop_outlives_request
from acp_adapters.core.agents import AgentRegistry
from acp_adapters.core.arguments import (
    check_callable,
    check_executor,
    check_registry,
    check_settings,
    check_store,
)
from acp_adapters.core.build import build_service
from acp_adapters.core.errors import ACPError, PayloadTooLargeError, PermissionRequired
from acp_adapters.core.executors import Executor
from acp_adapters.core.http import Headers, Request, Response, StreamResponse
from acp_adapters.core.service import ACPService
from acp_adapters.core.settings import Settings
from acp_adapters.core.store import Store
from acp_adapters.workers import MOUNT_LOADERS, warn_if_store_not_shared

from .auth import auser_owner, user_owner
from .conf import Authorize, Guard, Owner, conf
from .csrf import SAFE_METHODS, check_csrf

__all__ = ["ACPSite", "all_sites", "bridge_every_site", "site"]

#: Django 5.1's decorator, which only marks a view (``None`` before 5.1, which has no such middleware).
_login_not_required: Callable[[Any], Any] | None = getattr(auth_decorators, "login_not_required", None)

#: Every site made, in order (weakly: a site nothing else holds is gone), for the warm-up of a worker.
_SITES: weakref.WeakKeyDictionary[ACPSite, None] = weakref.WeakKeyDictionary()

SyncView = Callable[[HttpRequest, str], HttpResponseBase]
AsyncView = Callable[[HttpRequest, str], Coroutine[Any, Any, HttpResponseBase]]


class ACPSite:
    """One ACP mount: its agents, its service, and the URL patterns to mount it.

    ``path("acp/", site.urls)`` mounts it (as Django's admin mounts); ``include()`` of
    ``acp_adapters.django.urls`` mounts the default site, :data:`site`. Arguments left out take their
    value from ``settings.ACP_ADAPTERS`` (see :mod:`acp_adapters.django.conf`): ``owner`` defaults to
    the user's primary key, ``guard`` and ``authorize`` to letting everyone through. ``name`` is the
    URL namespace (``reverse("acp:api", kwargs={"path": "runs"})``).

    ``guard(request)`` takes the ``HttpRequest`` and decides for the whole mount, in the view: it may
    use ``request.user`` and the ORM. ``authorize(request, agent)`` is the core's per-agent hook
    (:class:`~acp_adapters.core.service.ACPService`), the same in every framework; it runs on the
    event loop (under WSGI the one loop every thread shares), so it must not block: it reads the core
    :class:`Request` (headers, ``owner``; ``request.native`` is the ``HttpRequest``), or awaits.

    The service starts on the first request and lives as long as the process.
    """

    def __init__(
        self,
        registry: AgentRegistry | None = None,
        *,
        store: Store | None = None,
        settings: Settings | None = None,
        owner: Owner | None = None,
        guard: Guard | None = None,
        authorize: Authorize | None = None,
        name: str = "acp",
        executor: Executor | None = None,
    ) -> None:
        if registry is not None:  # (None: ACP_ADAPTERS["REGISTRY"], checked by manage.py check)
            check_registry("ACPSite", registry)
        check_store("ACPSite", store)
        check_settings("ACPSite", settings)
        check_executor("ACPSite", executor)
        for hook, value in (("owner", owner), ("guard", guard), ("authorize", authorize)):
            check_callable("ACPSite", hook, value)
        if not isinstance(name, str) or not name:
            raise TypeError(f"ACPSite(name=...) needs a URL namespace such as 'acp', not {name!r}")
        self.name = name
        self._registry, self._store, self._settings = registry, store, settings
        self._owner, self._guard, self._authorize = owner, guard, authorize
        self._executor = executor
        self._service: ACPService | None = None
        self._bridge: SyncBridge | None = None
        self._lock = threading.Lock()
        _SITES[self] = None

        def sync_view(request: HttpRequest, path: str) -> HttpResponseBase:
            return self.serve(request, path)

        async def async_view(request: HttpRequest, path: str) -> HttpResponseBase:
            return await self.aserve(request, path)

        self.sync_view, self.async_view = self._mark(sync_view), self._mark(async_view)

    def _mark(self, view: Any) -> Any:
        # Not django.views.decorators.csrf.csrf_exempt: before Django 5.0 it turned async views into
        # sync ones. The check is made in the view, for the requests the session authenticates.
        view.csrf_exempt = True
        # Django 5.1's LoginRequiredMiddleware would redirect anonymous callers to a login page:
        # the guard decides who gets in, with an ACP error.
        if _login_not_required is not None:
            view = _login_not_required(view)
        view.acp_site = self  # how acp_adapters.django.asgi_body_limit finds the mount's limit
        return view

    # mounting -------------------------------------------------------------------------------------
    @property
    def urlpatterns(self) -> list[URLPattern]:
        """The URL patterns of the mount (one, named ``api``, that takes every path)."""
        return [_ServerModePattern(self.sync_view, self.async_view, name="api")]

    @property
    def urls(self) -> tuple[list[URLPattern], str, str]:
        """For ``path("acp/", site.urls)``: the patterns, the app name ``acp`` and the namespace."""
        return self.urlpatterns, "acp", self.name

    @property
    def takes_registry_from_settings(self) -> bool:
        """Whether this mount serves ``ACP_ADAPTERS['REGISTRY']`` (it was given no registry)."""
        return self._registry is None

    # the service ----------------------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        """The core's settings of this mount (given, or from ``ACP_ADAPTERS``), without starting it."""
        service = self._service
        if service is not None:
            return service.settings
        return conf.settings if self._settings is None else self._settings

    @property
    def service(self) -> ACPService:
        """The ACP service of this mount, made on first use."""
        service = self._service
        if service is None:
            with self._lock:
                if self._service is None:
                    self._service = self._make_service()
                service = self._service
        return service

    @property
    def bridge(self) -> SyncBridge:
        """The bridge that serves :attr:`service` to WSGI threads, made on first use."""
        bridge = self._bridge
        if bridge is None:
            service = self.service
            with self._lock:
                if self._bridge is None:
                    self._bridge = SyncBridge(service)
                bridge = self._bridge
        return bridge

    def _make_service(self) -> ACPService:
        store = self._store
        if store is None and conf.store_factory is not None:
            store = conf.store_factory()
        registry = conf.registry if self._registry is None else self._registry
        authorize = conf.authorize if self._authorize is None else self._authorize
        executor = conf.executor if self._executor is None else self._executor
        service = build_service(
            "ACPSite", registry, store=store, settings=self.settings, authorize=authorize, executor=executor
        )
        warn_if_store_not_shared(service.store)
        return service

    def close(self) -> None:
        """Stop the service run by the bridge (WSGI); the next request starts a new one."""
        with self._lock:
            bridge, self._bridge, self._service = self._bridge, None, None
        if bridge is not None:
            bridge.close()

    async def aclose(self) -> None:
        """Stop the service on the running loop (ASGI); the next request starts a new one."""
        with self._lock:
            service, bridge, self._bridge, self._service = self._service, self._bridge, None, None
        if bridge is not None:  # the service runs on the bridge's loop
            await sync_to_async(bridge.close, thread_sensitive=False)()
        elif service is not None:
            await service.aclose()

    # the views ------------------------------------------------------------------------------------
    def serve(self, request: HttpRequest, path: str) -> HttpResponseBase:
        """Answer ``request`` (WSGI); ``path`` is what follows the mount's prefix."""
        try:
            owner = self._identify(request)
            body = _body(request, self.settings.max_body_size)
        except ACPError as exc:
            return _response(self.service.error_response(self._request(request, path), exc))
        answer = self.bridge.handle(self._request(request, path, owner, body))
        if isinstance(answer, SyncStreamResponse):
            return StreamingHttpResponse(answer.body, status=answer.status, headers=_headers(answer.headers))
        return _response(answer)

    async def aserve(self, request: HttpRequest, path: str) -> HttpResponseBase:
        """Answer ``request`` on the server's event loop (ASGI)."""
        try:
            owner = await self._aidentify(request)
            body = _body(request, self.settings.max_body_size)
        except ACPError as exc:
            return _response(self.service.error_response(self._request(request, path), exc))
        neutral = self._request(request, path, owner, body)
        if self._bridge is None and loop_outlives_request(getattr(request, "scope", None)):
            answer = await self.service.handle(neutral)
        else:  # a test client's loop, or the WSGI side started the service: one loop for both
            answer = await self.bridge.ahandle(neutral)
        if isinstance(answer, StreamResponse):
            stream = _ClosingStream(answer.body, asyncio.get_running_loop())
            return StreamingHttpResponse(stream, status=answer.status, headers=_headers(answer.headers))
        return _response(answer)

    def _identify(self, request: HttpRequest) -> str | None:
        """Check CSRF for the session's user, run the guard, then give the owner; an ACPError denies
        the request."""
        check_csrf(request)
        guard = self._guard or conf.guard
        if guard is not None:
            try:
                guard(request)
            except PermissionDenied as exc:
                raise PermissionRequired(str(exc) or "permission denied") from exc
        return (self._owner or conf.owner or user_owner)(request)

    async def _aidentify(self, request: HttpRequest) -> str | None:
        """:meth:`_identify` under ASGI: in a worker thread (guards and owners may use the ORM), or on
        the loop for the default owner of an unguarded mount."""
        if self._guard is None and self._owner is None and conf.guard is None and conf.owner is None:
            owner = await auser_owner(request)
            if owner is not None and request.method not in SAFE_METHODS:
                await sync_to_async(check_csrf)(request, logged_in=True)
            return owner
        return await sync_to_async(self._identify)(request)

    def _request(
        self, request: HttpRequest, path: str, owner: str | None = None, body: bytes = b""
    ) -> Request:
        prefix = request.path[: len(request.path) - len(path)]
        return Request(
            method=request.method or "GET",
            path="/" + path,
            base_url=request.build_absolute_uri(prefix).rstrip("/"),
            query=request.META.get("QUERY_STRING", ""),
            # From META as the WSGI adapter reads it: request.headers costs three times as much.
            # Content-Type included, as sent: the core answers 415 to anything but JSON.
            headers=headers_from_environ(request.META),
            body=body,
            owner=owner,
            native=request,
        )


def _body(request: HttpRequest, limit: int) -> bytes:
    """The body, but never more than ``limit + 1`` bytes (enough for the core to answer 413); a
    ``Content-Length`` over ``limit`` is refused without keeping any of it (read and dropped when it is
    at most a MiB over, see :func:`drop_excess`).

    Not ``request.body``: ``DATA_UPLOAD_MAX_MEMORY_SIZE`` would answer 400 below the core's limit.
    """
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        drop_excess(request.read, declared, over_by=declared - limit)
        raise PayloadTooLargeError(limit)
    environ = getattr(request, "environ", None)
    if environ is not None and not environ.get("CONTENT_LENGTH") and environ.get("wsgi.input_terminated"):
        # A chunked body under WSGI: Django reads CONTENT_LENGTH bytes, none without it, while the
        # server says the input ends where the body does (gunicorn, uWSGI).
        return read_body(environ, limit)
    return request.read(limit + 1)


class _ServerModePattern(URLPattern):
    """Resolves to the async view on an event loop (Django's ``ASGIHandler`` resolves there) and to
    the sync view elsewhere (``WSGIHandler`` threads run no loop)."""

    def __init__(self, sync_view: SyncView, async_view: AsyncView, name: str) -> None:
        super().__init__(
            RegexPattern(r"^(?P<path>[\s\S]*)\Z", name=name, is_endpoint=True), sync_view, name=name
        )
        self.async_view = async_view

    def resolve(self, path: str) -> ResolverMatch | None:
        match = super().resolve(path)
        if match is not None and _loop_is_running():
            match.func = self.async_view
        return match


def _loop_is_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _ClosingStream:
    """The core's event stream as Django's ASGI handler wants it: an async iterable with ``close()``.

    Django calls ``close()`` (from a worker thread) when the response is done, also when the client
    went away and the stream was left half read: it closes the core's stream on its loop, which
    ends the subscription (never the run).
    """

    def __init__(self, body: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._body = body
        self._loop = loop

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._body

    def close(self) -> None:
        aclose = getattr(self._body, "aclose", None)
        if aclose is not None and not self._loop.is_closed():
            asyncio.run_coroutine_threadsafe(_quietly(aclose), self._loop)


async def _quietly(aclose: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with contextlib.suppress(RuntimeError):  # still being iterated elsewhere: it closes itself then
        await aclose()


def _headers(headers: Headers) -> dict[str, str]:
    merged: dict[str, str] = {}
    for name, value in headers:
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    return merged


def _response(answer: Response) -> HttpResponse:
    response = HttpResponse(answer.body, status=answer.status, headers=_headers(answer.headers))
    response["Content-Length"] = str(len(answer.body))
    return response


def all_sites() -> list[ACPSite]:
    """Every :class:`ACPSite` of this process still in use, oldest first."""
    return list(_SITES)


def bridge_every_site() -> list[SyncBridge]:
    """Import the URL configuration, as the first request would (it makes the sites), and make the
    service and bridge of every site: what :func:`acp_adapters.workers.warm_up` starts in a WSGI
    worker. Nothing before Django is set up; not for ASGI, where the sites serve on the server's loop."""
    if not apps.ready:
        return []
    get_resolver().url_patterns  # noqa: B018 - the import of the URLconf
    return [site.bridge for site in all_sites()]


MOUNT_LOADERS.append(bridge_every_site)


#: The default mount, configured by ``settings.ACP_ADAPTERS``; ``acp_adapters.django.urls`` serves it.
site = ACPSite()
