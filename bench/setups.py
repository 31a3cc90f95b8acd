"""What some deployments need around their servers: context managers giving extra environment.

A deployment names one in ``Deployment.setup``; the harness enters it before the server starts and
leaves it after the server stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

__all__ = ["SETUPS", "django_postgres"]

POSTGRES_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def django_postgres(cwd: Path, env: dict[str, str]) -> Iterator[dict[str, str]]:
    """A scratch PostgreSQL database, migrated for the Django example; dropped afterwards."""
    import psycopg

    name = f"acp_bench_{uuid.uuid4().hex[:12]}"
    url = urlunsplit(urlsplit(POSTGRES_URL)._replace(path="/" + name))
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        extra = {"BENCH_DATABASE_URL": url}
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
            cwd=cwd,
            env={**env, **extra},
            check=True,
            capture_output=True,
            timeout=300,
        )
        yield extra
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


SETUPS: dict[str, Callable[[Path, dict[str, str]], AbstractContextManager[dict[str, str]]]] = {
    "django_postgres": django_postgres
}
