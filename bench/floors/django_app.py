"""The Django floor: views and settings shared by :mod:`.django_asgi` and :mod:`.django_wsgi`.

The settings are a plain project's (the middleware ``startproject`` writes, CSRF exempt views), so
that the floor costs what the host project costs, not less.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt
from pydantic import ValidationError

from bench.floors import answers

JSON = "application/json"

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]


def configure(urlconf: str) -> None:
    """Configure Django for the floor whose URLconf is the module ``urlconf``."""
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-floor-not-secret",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=urlconf,
        MIDDLEWARE=MIDDLEWARE,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        USE_TZ=True,
    )
    django.setup()


def _answer(body: bytes, stream: Callable[[tuple[bytes, ...]], Any]) -> HttpResponse | StreamingHttpResponse:
    try:
        run = answers.parse(body)
    except ValidationError:
        return HttpResponse(
            b'{"code":"invalid_input","message":"bad request"}', status=422, content_type=JSON
        )
    if run.mode == "stream":
        events = answers.stream_events(answers.chunks_count(run))
        return StreamingHttpResponse(stream(events), content_type="text/event-stream")
    if run.mode == "async":
        return HttpResponse(answers.async_run(), status=202, content_type=JSON)
    return HttpResponse(answers.completed_run(), content_type=JSON)


async def _iterate(events: tuple[bytes, ...]) -> AsyncIterator[bytes]:
    for event in events:
        yield event


@csrf_exempt
def create_run(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    return _answer(request.body, iter)


@csrf_exempt
async def create_run_async(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    return _answer(request.body, _iterate)


def get_run(request: HttpRequest, run_id: str) -> HttpResponse:
    return HttpResponse(answers.completed_run(), content_type=JSON)


async def get_run_async(request: HttpRequest, run_id: str) -> HttpResponse:
    return get_run(request, run_id)


def agents(request: HttpRequest) -> HttpResponse:
    return HttpResponse(answers.AGENTS, content_type=JSON)


async def agents_async(request: HttpRequest) -> HttpResponse:
    return agents(request)


def urls(*, asynchronous: bool) -> list[URLPattern]:
    """The floor's routes: async views under ASGI, sync views under WSGI (as the adapter does)."""
    if asynchronous:
        return [
            path("acp/runs", create_run_async),
            path("acp/runs/<str:run_id>", get_run_async),
            path("acp/agents", agents_async),
        ]
    return [path("acp/runs", create_run), path("acp/runs/<str:run_id>", get_run), path("acp/agents", agents)]
