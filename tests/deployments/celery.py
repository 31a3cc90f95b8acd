"""The examples with ``ACP_EXECUTOR=celery``: every run executes on one of two Celery worker processes.

* ``starlette-uvicorn-celery``: ``uvicorn --workers 2 example_starlette.app:app`` on the Redis store,
  the Redis broker;
* ``django-gunicorn-postgres-celery``: ``gunicorn -w 2 example_django.wsgi:application`` on the Django
  database store in a fresh PostgreSQL database (``tests.django_store.deploy_settings``), the Redis
  broker.

Each starts two workers, ``celery -A example_agents.worker worker -P threads -c 32`` (see
:func:`celery_workers`), on a queue of its own (``ACP_CELERY_QUEUE``): other deployments and other test
sessions sharing the Redis server never take its runs. The web processes only record runs and send
their tasks; the workers build the same services from the same environment (settings, store,
``ACP_TRUSTED_ORIGINS``) and execute them. ``Target.extra["celery"]`` is the :class:`CeleryWorkers`
(its processes and logs, for the fault tests), ``extra["queue"]`` the queue.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import celery  # noqa: F401 - without Celery these deployments are skipped
import pytest
import redis

from tests.stores.backends import REDIS_URL, delete_prefix, redis_address

from .base import (
    REPO_ROOT,
    Deployment,
    ServerStartError,
    Target,
    free_port,
    gunicorn_command,
    log_tail,
    require_service,
    serve,
)
from .redis import store_url

__all__ = ["DEPLOYMENTS", "CeleryWorkers", "celery_workers", "django_celery", "starlette_celery"]

#: Worker processes per deployment, and runs each executes at once (threads of its pool).
WORKERS = 2
CONCURRENCY = 32
#: How long a worker may take to start (it imports the app and connects to the broker).
READY_TIMEOUT = 60.0


@dataclass
class WorkerProcess:
    """One ``celery worker`` process and its log."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def ready(self) -> bool:
        return "ready." in self.log.read_text(errors="replace")


@dataclass
class CeleryWorkers:
    """The Celery worker processes of a deployment: started, killed and restarted by the tests."""

    env: dict[str, str]
    pool: str = "threads"
    concurrency: int = CONCURRENCY
    workers: list[WorkerProcess] = field(default_factory=list)

    def start(self, name: str) -> WorkerProcess:
        """Start one more worker named ``name`` and wait until it is ready."""
        worker = self.spawn(name)
        self.wait_ready(worker)
        return worker

    def spawn(self, name: str) -> WorkerProcess:
        """Start one more worker named ``name``, without waiting for it (see :meth:`wait_ready`)."""
        fd, log_name = tempfile.mkstemp(prefix=f"acp-celery-{name}-", suffix=".log")
        log = Path(log_name)
        command = [
            *(sys.executable, "-m", "celery", "-A", "example_agents.worker", "worker"),
            *("-P", self.pool, "-c", str(self.concurrency), "-n", f"{name}@%h", "--loglevel=info"),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        with os.fdopen(fd, "wb") as log_file:
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                # Celery reads "-P prefork" as its default, which the app's worker_pool overrides.
                env={**self.env, "ACP_CELERY_POOL": self.pool},
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = WorkerProcess(name, process, log)
        self.workers.append(worker)
        return worker

    def wait_ready(self, worker: WorkerProcess) -> None:
        """Wait until ``worker`` takes jobs (fail if it exits or takes more than ``READY_TIMEOUT``)."""
        deadline = time.monotonic() + READY_TIMEOUT
        while not worker.ready():
            if worker.process.poll() is not None or time.monotonic() > deadline:
                raise ServerStartError(f"Celery worker {worker.name} did not start:\n{log_tail(worker.log)}")
            time.sleep(0.1)

    def wait_all(self) -> None:
        """Wait until every worker takes jobs."""
        for worker in self.workers:
            self.wait_ready(worker)

    def kill(self, worker: WorkerProcess, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the worker's process group (its pool's children too, for prefork)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.process.pid, sig)

    def stop(self) -> None:
        """Stop every worker: a warm shutdown, then a kill if one lingers."""
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.terminate()
        for worker in self.workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(15)
            self.kill(worker)
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(5)

    def logs(self) -> str:
        """The end of every worker's log (for a failing test's report)."""
        return "\n".join(f"--- {w.name}\n{log_tail(w.log, 4000)}" for w in self.workers)


@contextlib.contextmanager
def celery_workers(
    env: Mapping[str, str],
    *,
    count: int = WORKERS,
    pool: str = "threads",
    concurrency: int = CONCURRENCY,
    wait: bool = True,
) -> Iterator[CeleryWorkers]:
    """Start ``count`` Celery workers of the examples with ``env`` added to the environment, all at
    once, and wait until each is ready (unless ``wait`` is false: the caller then calls
    :meth:`CeleryWorkers.wait_all`, having started its web server meanwhile); stop them on
    exit (their logs are deleted unless a worker failed to start)."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), environment.get("PYTHONPATH", "")) if p
    )
    workers = CeleryWorkers(environment, pool=pool, concurrency=concurrency)
    try:
        for index in range(count):
            workers.spawn(f"w{index + 1}-{uuid.uuid4().hex[:6]}")
        if wait:
            workers.wait_all()
        yield workers
    finally:
        workers.stop()
    for worker in workers.workers:
        worker.log.unlink(missing_ok=True)


def _delete_queue(redis_url: str, queue: str) -> None:
    """Drop what the Redis transport keeps of ``queue`` (its list and its binding)."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(queue, f"_kombu.binding.{queue}")
    finally:
        client.close()


def celery_env(redis_url: str = REDIS_URL, **extra: str) -> dict[str, str]:
    """The environment of a Celery deployment: its own queue, the Redis broker, a peer to trust, a
    short shutdown grace (the tests stop workers often)."""
    peer = free_port()
    return {
        "ACP_EXECUTOR": "celery",
        "ACP_CELERY_BROKER": redis_url,
        "ACP_CELERY_QUEUE": f"acp-test-{uuid.uuid4().hex[:12]}",
        "ACP_CELERY_SHUTDOWN_GRACE": "1",
        "ACP_TRUSTED_ORIGINS": f"http://127.0.0.1:{peer}",
        "ACP_TEST_PEER_PORT": str(peer),
        **extra,
    }


@contextlib.contextmanager
def starlette_celery(
    *,
    redis_url: str = REDIS_URL,
    env: Mapping[str, str] | None = None,
    workers: int = WORKERS,
    pool: str = "threads",
    concurrency: int = CONCURRENCY,
) -> Iterator[Target]:
    """The Starlette example on Redis, its runs executed by ``workers`` Celery workers."""
    host, port = redis_address(redis_url)
    require_service(host, port, f"Redis ({redis_url}, from REDIS_URL)")
    prefix = f"acp-celery-{uuid.uuid4().hex[:12]}:"
    environment = celery_env(redis_url, ACP_STORE=store_url(prefix, redis_url), **(env or {}))
    command = ["{python}", "-m", "uvicorn", "example_starlette.app:app", "--workers", "2"]
    command += ["--host", "{host}", "--port", "{port}"]
    try:
        with (
            celery_workers(
                environment, count=workers, pool=pool, concurrency=concurrency, wait=False
            ) as started,
            serve(command, env=environment, name="starlette-uvicorn-celery") as target,
        ):
            started.wait_all()
            _describe(target, started, environment)
            target.extra.update(redis_url=redis_url, prefix=prefix)
            yield target
    finally:
        with contextlib.suppress(Exception):  # a test may have stopped that Redis
            delete_prefix(redis_url, prefix)
            _delete_queue(redis_url, environment["ACP_CELERY_QUEUE"])


@contextlib.contextmanager
def django_celery(*, lease_ttl: float = 10.0, workers: int = WORKERS) -> Iterator[Target]:
    """The Django example on PostgreSQL (the database store), its runs executed by Celery workers."""
    from .django_postgres import DATABASE_URL, SETTINGS_MODULE, migrate, scratch_database

    parts = urlsplit(DATABASE_URL)
    require_service(parts.hostname or "127.0.0.1", parts.port or 5432, f"PostgreSQL ({DATABASE_URL})")
    host, port = redis_address(REDIS_URL)
    require_service(host, port, f"Redis ({REDIS_URL}, the Celery broker)")
    with scratch_database() as url:
        environment = celery_env(
            REDIS_URL,
            ACP_STORE="django",
            DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
            ACP_DEPLOY_DATABASE_URL=url,
            ACP_LEASE_TTL=str(lease_ttl),
        )
        migrate(environment)
        command = gunicorn_command("example_django.wsgi:application", workers=2)
        try:
            with (
                celery_workers(environment, count=workers, wait=False) as started,
                serve(command, env=environment, name="django-gunicorn-postgres-celery") as target,
            ):
                started.wait_all()
                _describe(target, started, environment)
                target.extra["database_url"] = url
                yield target
        finally:
            with contextlib.suppress(Exception):
                _delete_queue(REDIS_URL, environment["ACP_CELERY_QUEUE"])


def _describe(target: Target, workers: CeleryWorkers, env: Mapping[str, str]) -> None:
    target.extra.update(
        celery=workers, queue=env["ACP_CELERY_QUEUE"], peer_port=int(env["ACP_TEST_PEER_PORT"])
    )


_MARKS = (pytest.mark.celery, pytest.mark.redis, pytest.mark.slow)

DEPLOYMENTS = [
    Deployment("starlette-uvicorn-celery", starlette_celery, (pytest.mark.starlette, *_MARKS), True),
    Deployment(
        "django-gunicorn-postgres-celery",
        django_celery,
        (pytest.mark.django, pytest.mark.postgres, *_MARKS),
        real_server=True,
        official_clients=False,
    ),
]
