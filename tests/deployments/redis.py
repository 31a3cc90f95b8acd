"""The three examples on the Redis store, each with 4 worker processes.

* ``starlette-uvicorn-redis``: ``uvicorn --workers 4 example_starlette.app:app``;
* ``flask-gunicorn-redis``: ``gunicorn -w 4 -k gthread --threads 32 example_flask.app:app``;
* ``django-gunicorn-redis``: ``gunicorn -w 4 -k gthread --threads 32 example_django.wsgi:application``.

Each picks the store from ``ACP_STORE`` (``REDIS_URL`` with a key prefix of its own, deleted after the
stop). The test client opens a new connection per request, so a run created through one worker is
polled, streamed, cancelled and resumed through others. ``Target.extra`` has ``redis_url``, ``prefix``
and ``workers``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis  # noqa: F401 - without redis-py these deployments are skipped

from tests.stores.backends import REDIS_URL, delete_prefix, redis_address

from .base import Deployment, Target, gunicorn_command, require_service, serve

WORKERS = 4


def store_url(prefix: str, url: str = REDIS_URL) -> str:
    """``url`` with ``prefix`` as its key prefix (``?prefix=``, which the Redis store reads)."""
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, f"prefix={prefix}") if q)
    return urlunsplit(parts._replace(query=query))


@contextlib.contextmanager
def on_redis(
    command: list[str], *, name: str, env: Mapping[str, str] | None = None, redis_url: str = REDIS_URL
) -> Iterator[Target]:
    """Serve ``command`` with ``ACP_STORE`` on ``redis_url`` under a fresh key prefix; delete them after."""
    host, port = redis_address(redis_url)
    require_service(host, port, f"Redis ({redis_url}, from REDIS_URL)")
    prefix = f"acp-deploy-{uuid.uuid4().hex[:12]}:"
    environment = {"ACP_STORE": store_url(prefix, redis_url), **(env or {})}
    try:
        with serve(command, env=environment, name=name) as target:
            target.extra.update(redis_url=redis_url, prefix=prefix, workers=WORKERS)
            yield target
    finally:
        with contextlib.suppress(Exception):  # a test may have stopped that Redis
            delete_prefix(redis_url, prefix)


def starlette_uvicorn_redis(
    redis_url: str = REDIS_URL, *, env: Mapping[str, str] | None = None
) -> contextlib.AbstractContextManager[Target]:
    command = ["{python}", "-m", "uvicorn", "example_starlette.app:app", "--workers", str(WORKERS)]
    command += ["--host", "{host}", "--port", "{port}"]
    return on_redis(command, name="starlette-uvicorn-redis", env=env, redis_url=redis_url)


def flask_gunicorn_redis(
    redis_url: str = REDIS_URL, *, env: Mapping[str, str] | None = None
) -> contextlib.AbstractContextManager[Target]:
    return on_redis(
        gunicorn_command("example_flask.app:app", workers=WORKERS),
        name="flask-gunicorn-redis",
        env=env,
        redis_url=redis_url,
    )


def django_gunicorn_redis(
    redis_url: str = REDIS_URL, *, env: Mapping[str, str] | None = None
) -> contextlib.AbstractContextManager[Target]:
    return on_redis(
        gunicorn_command("example_django.wsgi:application", workers=WORKERS),
        name="django-gunicorn-redis",
        env={"DJANGO_SETTINGS_MODULE": "example_django.settings", **(env or {})},
        redis_url=redis_url,
    )


_MARKS = (pytest.mark.redis, pytest.mark.slow)

DEPLOYMENTS = [
    Deployment("starlette-uvicorn-redis", starlette_uvicorn_redis, (pytest.mark.starlette, *_MARKS), True),
    Deployment("flask-gunicorn-redis", flask_gunicorn_redis, (pytest.mark.flask, *_MARKS), True),
    Deployment("django-gunicorn-redis", django_gunicorn_redis, (pytest.mark.django, *_MARKS), True),
]

__all__ = [
    "DEPLOYMENTS",
    "WORKERS",
    "django_gunicorn_redis",
    "flask_gunicorn_redis",
    "on_redis",
    "starlette_uvicorn_redis",
    "store_url",
]
