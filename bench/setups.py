"""What some deployments need around their servers: context managers giving extra environment.

A deployment names one in ``Deployment.setup``; the harness enters it before the server starts and
leaves it after the server stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

__all__ = ["SETUPS", "celery_workers", "django_postgres"]

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


#: Celery worker processes (``celery_workers``), and the runs each executes at once (threads).
CELERY_WORKERS = 2
CELERY_CONCURRENCY = 32


@contextmanager
def celery_workers(cwd: Path, env: dict[str, str]) -> Iterator[dict[str, str]]:
    """Celery workers of the examples (``example_agents.worker``, the threads pool) on a queue of their
    own, ready before the server starts; stopped (warm, then killed) and their queue dropped after."""
    import redis

    queue = f"acp-bench-{uuid.uuid4().hex[:12]}"
    extra = {"ACP_CELERY_QUEUE": queue, "ACP_CELERY_POOL": "threads"}
    workers: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for index in range(CELERY_WORKERS):
            log = Path(cwd) / f".bench-celery-{queue}-{index}.log"
            command = [
                *(sys.executable, "-m", "celery", "-A", "example_agents.worker", "worker", "--loglevel=info"),
                *(
                    "-c",
                    str(CELERY_CONCURRENCY),
                    "-n",
                    f"bench{index}@%h",
                    "--without-gossip",
                    "--without-mingle",
                ),
            ]
            with log.open("wb") as out:
                process = subprocess.Popen(
                    command,
                    cwd=cwd,
                    env={**env, **extra},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            workers.append((process, log))
        deadline = time.monotonic() + 60
        for process, log in workers:
            while "ready." not in log.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"a Celery worker did not start: {log.read_text(errors='replace')[-2000:]}"
                    )
                time.sleep(0.1)
        yield extra
    finally:
        for process, _ in workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process, log in workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(15)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            log.unlink(missing_ok=True)
        client = redis.Redis.from_url(env.get("ACP_CELERY_BROKER") or env["ACP_STORE"])
        client.delete(queue, f"_kombu.binding.{queue}")
        client.close()


SETUPS: dict[str, Callable[[Path, dict[str, str]], AbstractContextManager[dict[str, str]]]] = {
    "django_postgres": django_postgres,
    "celery_workers": celery_workers,
}
