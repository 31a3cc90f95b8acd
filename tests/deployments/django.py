"""The Django example (``example_django``) under WSGI and ASGI, in process and on real servers.

* ``django-wsgi-inprocess``: Django's test ``Client`` (the sync view, the bridge's loop);
* ``django-asgi-inprocess``: Django's ``AsyncClient`` on one event loop that lives as long as the
  deployment (an anyio blocking portal), so that runs carry on between requests;
* ``django-gunicorn``: ``gunicorn -w 1 -k gthread --threads 32 example_django.wsgi:application``;
* ``django-uvicorn``: ``uvicorn example_django.asgi:application``.

Importing this module configures Django with ``example_django.settings`` (unless
``DJANGO_SETTINGS_MODULE`` names other settings already), which also turns pytest-django on for the
session; nothing else in the repository's pytest configuration is needed for it.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import django
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from django.http import HttpResponseBase, StreamingHttpResponse
from django.test import AsyncClient, Client

from .base import Deployment, HttpResult, StreamedAnswer, Target, gunicorn_command, serve

SETTINGS_MODULE = "example_django.settings"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
django.setup()

#: What the in-process clients send as the host; ``example_django.settings`` allows it.
HOST = "testserver"


def _arguments(
    json: Any, content: bytes | None, headers: Mapping[str, str] | None
) -> tuple[bytes, str, dict[str, str]]:
    """The body, its content type and the other headers, as Django's test clients take them."""
    others = {name: value for name, value in (headers or {}).items() if name.lower() != "content-type"}
    given = next((value for name, value in (headers or {}).items() if name.lower() == "content-type"), None)
    if json is not None:
        return jsonlib.dumps(json).encode(), given or "application/json", others
    return content or b"", given or "", others  # no type, as acp-sdk sends its bodies


def _result(response: HttpResponseBase, body: bytes) -> HttpResult:
    merged: dict[str, str] = {}
    for name, value in response.items():
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return HttpResult(status=response.status_code, headers=merged, body=body)


class DjangoContractClient:
    """A :class:`~tests.deployments.base.ContractClient` over Django's test ``Client`` (WSGI).

    ``user`` is logged in (a session) and ``options`` go to the client (``enforce_csrf_checks``).
    Each request gets its own client, so that threads share none. A stream is read to its end;
    :meth:`stream` reads it as the view writes it and closes it when left.
    """

    live_streams = True

    def __init__(self, mount: str, *, user: Any = None, **options: Any) -> None:
        self.mount = mount
        self.user = user
        self.options = options

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResult:
        body, content_type, others = _arguments(json, content, headers)
        client = Client(raise_request_exception=False, **self.options)
        if self.user is not None:
            client.force_login(self.user)
        response = client.generic(method, self.mount + path, body, content_type, headers=others)
        # The test client closes the response itself: a complete one at once, a stream when it is read
        # to its end (as a WSGI server would), without firing close_old_connections on this thread.
        answer: HttpResponseBase = response  # (django-stubs' test response types know no stream)
        data = answer.getvalue() if isinstance(answer, StreamingHttpResponse) else response.content
        return _result(response, data)

    @contextlib.contextmanager
    def stream(
        self, method: str, path: str, *, json: Any = None, headers: Mapping[str, str] | None = None
    ) -> Iterator[StreamedAnswer]:
        body, content_type, others = _arguments(json, None, headers)
        client = Client(raise_request_exception=False, **self.options)
        if self.user is not None:
            client.force_login(self.user)
        response = client.generic(method, self.mount + path, body, content_type, headers=others)
        answer: HttpResponseBase = response
        if isinstance(answer, StreamingHttpResponse):
            chunks = answer.streaming_content
            assert isinstance(chunks, Iterator), f"a stream the WSGI client cannot read: {chunks!r}"
        else:
            chunks = iter([response.content])
        try:
            yield StreamedAnswer(response.status_code, _result(response, b"").headers, chunks)
        finally:
            # What a WSGI server does when the client has gone. A stream is closed through the test
            # client's wrapper of its content (the response's resource closer), which calls
            # response.close() with close_old_connections disconnected, as for a stream read to its
            # end. response.close() itself would fire close_old_connections, and pytest-django's guard
            # refuses the database connection an earlier test left open on this thread.
            if isinstance(answer, StreamingHttpResponse):
                for close in list(getattr(answer, "_resource_closers", ())):
                    close()


class DjangoAsyncContractClient:
    """A :class:`~tests.deployments.base.ContractClient` over Django's ``AsyncClient`` (ASGI), which
    runs every request on the portal's event loop (the loop that hosts the service). It reads a stream
    to its end before handing it over, :meth:`stream` included."""

    live_streams = False

    def __init__(self, portal: BlockingPortal, mount: str, *, user: Any = None, **options: Any) -> None:
        self.portal = portal
        self.mount = mount
        self.user = user
        self.options = options

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResult:
        return self.portal.call(self._request, method, path, _arguments(json, content, headers))

    @contextlib.contextmanager
    def stream(
        self, method: str, path: str, *, json: Any = None, headers: Mapping[str, str] | None = None
    ) -> Iterator[StreamedAnswer]:
        result = self.request(method, path, json=json, headers=headers)
        yield StreamedAnswer(result.status, result.headers, iter([result.body]))

    async def _request(
        self, method: str, path: str, arguments: tuple[bytes, str, dict[str, str]]
    ) -> HttpResult:
        body, content_type, others = arguments
        client = AsyncClient(raise_request_exception=False, **self.options)
        if self.user is not None:
            await client.aforce_login(self.user)
        response = await client.generic(method, self.mount + path, body, content_type, headers=others)
        answer: HttpResponseBase = response  # (django-stubs' test response types know no stream)
        if isinstance(answer, StreamingHttpResponse):
            chunks = answer.streaming_content
            assert isinstance(chunks, AsyncIterator), f"a stream the AsyncClient cannot read: {chunks!r}"
            data = b"".join([chunk async for chunk in chunks])
        else:
            data = response.content
        return _result(response, data)


def example_sites() -> list[Any]:
    """Every ACP mount of the example (each holds a service that must start afresh per deployment)."""
    from acp_adapters.django.views import site
    from example_django.urls import private_site

    return [site, private_site]


@contextlib.contextmanager
def _wsgi_inprocess() -> Iterator[Target]:
    sites = example_sites()
    for acp_site in sites:
        acp_site.close()
    try:
        base_url = f"http://{HOST}/acp"
        yield Target(base_url=base_url, client=DjangoContractClient("/acp"), name="django-wsgi-inprocess")
    finally:
        for acp_site in sites:
            acp_site.close()


@contextlib.contextmanager
def _asgi_inprocess() -> Iterator[Target]:
    sites = example_sites()
    for acp_site in sites:
        acp_site.close()
    with start_blocking_portal() as portal:
        try:
            base_url = f"http://{HOST}/acp"
            client = DjangoAsyncContractClient(portal, "/acp")
            yield Target(
                base_url=base_url, client=client, name="django-asgi-inprocess", extra={"portal": portal}
            )
        finally:
            for acp_site in sites:
                portal.call(acp_site.aclose)


_ENV = {"DJANGO_SETTINGS_MODULE": SETTINGS_MODULE}


def gunicorn(*, env: Mapping[str, str] | None = None) -> contextlib.AbstractContextManager[Target]:
    """The Django example under gunicorn (WSGI), with ``env`` added to its environment."""
    return serve(
        gunicorn_command("example_django.wsgi:application"),
        env={**_ENV, **(env or {})},
        name="django-gunicorn",
    )


def uvicorn(*, env: Mapping[str, str] | None = None) -> contextlib.AbstractContextManager[Target]:
    """The Django example under uvicorn (ASGI), with ``env`` added to its environment."""
    return serve(
        [
            "{python}",
            "-m",
            "uvicorn",
            "example_django.asgi:application",
            "--host",
            "{host}",
            "--port",
            "{port}",
        ],
        env={**_ENV, **(env or {})},
        name="django-uvicorn",
    )


def _gunicorn() -> contextlib.AbstractContextManager[Target]:
    return gunicorn()


def _uvicorn() -> contextlib.AbstractContextManager[Target]:
    return uvicorn()


DEPLOYMENTS = [
    Deployment("django-wsgi-inprocess", _wsgi_inprocess, (pytest.mark.django,)),
    Deployment("django-asgi-inprocess", _asgi_inprocess, (pytest.mark.django,)),
    Deployment("django-gunicorn", _gunicorn, (pytest.mark.django, pytest.mark.slow), real_server=True),
    Deployment("django-uvicorn", _uvicorn, (pytest.mark.django, pytest.mark.slow), real_server=True),
]
