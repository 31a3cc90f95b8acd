"""The Django example on PostgreSQL with the database store, under gunicorn with 4 worker processes.

``django-gunicorn-postgres``: ``gunicorn -w 4 -k gthread --threads 32 example_django.wsgi:application``
with ``tests.django_store.deploy_settings`` (the example's settings, a fresh PostgreSQL database migrated
before the start and dropped after the stop, ``DjangoStore``). The test client opens a new connection per
request, so a run created through one worker is read, streamed, cancelled and resumed through others.
The PostgreSQL server is ``DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from .base import REPO_ROOT, Deployment, Target, gunicorn_command, require_service, serve

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
SETTINGS_MODULE = "tests.django_store.deploy_settings"
WORKERS = 4


def database_url(name: str, url: str = DATABASE_URL) -> str:
    """``url`` with its database replaced by ``name``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@contextlib.contextmanager
def scratch_database(url: str = DATABASE_URL) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of ``url``; yields its URL, drops it on exit."""
    name = f"acp_deploy_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name, url)
    finally:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(env: dict[str, str]) -> None:
    """``manage.py migrate`` with the deployment's settings (fails the start with its output)."""
    done = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
        cwd=REPO_ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode:
        raise RuntimeError(f"migrate failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


@contextlib.contextmanager
def gunicorn_postgres(
    *, workers: int = WORKERS, lease_ttl: float = 10.0, write_behind: bool = True
) -> Iterator[Target]:
    """Start the deployment (see the module docstring); ``Target.extra`` has ``database_url``."""
    parts = urlsplit(DATABASE_URL)
    require_service(parts.hostname or "127.0.0.1", parts.port or 5432, f"PostgreSQL ({DATABASE_URL})")
    with scratch_database() as url:
        env = {
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
            "ACP_DEPLOY_DATABASE_URL": url,
            "ACP_LEASE_TTL": str(lease_ttl),
            "ACP_WRITE_BEHIND": "1" if write_behind else "0",
        }
        migrate(env)
        command = gunicorn_command("example_django.wsgi:application", workers=workers)
        with serve(command, env=env, name="django-gunicorn-postgres") as target:
            target.extra["database_url"] = url
            target.extra["workers"] = workers
            yield target


DEPLOYMENTS = [
    Deployment(
        "django-gunicorn-postgres",
        gunicorn_postgres,
        (pytest.mark.django, pytest.mark.postgres, pytest.mark.slow),
        real_server=True,
    )
]

__all__ = ["DEPLOYMENTS", "gunicorn_postgres", "scratch_database"]
