"""The deployments the A2A suite runs against: each serves the demo agents over ACP and A2A from one
example app (a real server on a port), the A2A mount at ``/a2a`` beside ``/acp``.

Adding a deployment: make its example serve ``/a2a`` (the A2A mount sharing the ACP mount's engine),
then add an :class:`A2ADeployment` here whose ``start`` makes the framework's real server, with the
factory of ``tests/deployments/<framework>.py`` (a context manager yielding a
:class:`~tests.deployments.base.Target` for the ``/acp`` mount), and its marks::

    A2ADeployment("flask-gunicorn", _real("flask", "gunicorn"), (pytest.mark.flask, pytest.mark.slow))

Every test taking the ``a2a`` fixture (tests/a2a/conftest.py) then runs against it too (``-k
a2a-flask`` picks one). The framework's module is imported when its server starts.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.deployments.base import Target, origin

__all__ = ["A2A_DEPLOYMENTS", "A2ADeployment", "A2ATarget"]


@dataclass
class A2ATarget:
    """A running deployment as the A2A tests see it."""

    #: The A2A mount (``http://127.0.0.1:PORT/a2a``), each agent at ``{url}/{agent name}``.
    url: str
    #: The same server's ACP mount (``http://127.0.0.1:PORT/acp``) and the contract suite's target.
    acp: Target
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def agent(self, name: str) -> str:
        """The URL of an agent (what an A2A client is given; its card is under it)."""
        return f"{self.url}/{name}"


@dataclass(frozen=True)
class A2ADeployment:
    """A way of serving the demo agents over A2A: ``start()`` runs it and yields its ACP target."""

    name: str
    start: Callable[[], AbstractContextManager[Target]]
    marks: tuple[Any, ...] = ()
    mount: str = "/a2a"

    @contextmanager
    def run(self) -> Iterator[A2ATarget]:
        """Start the deployment; yield its A2A target; stop it."""
        with self.start() as target:
            yield A2ATarget(url=origin(target) + self.mount, acp=target, name=self.name)


def _real(module: str, factory: str) -> Callable[[], AbstractContextManager[Target]]:
    """The real server ``factory()`` of ``tests/deployments/<module>.py``, imported when it starts."""

    def start() -> AbstractContextManager[Target]:
        made: AbstractContextManager[Target] = getattr(
            importlib.import_module(f"tests.deployments.{module}"), factory
        )()
        return made

    return start


A2A_DEPLOYMENTS: list[A2ADeployment] = [
    A2ADeployment(
        "starlette-uvicorn", _real("starlette", "uvicorn"), (pytest.mark.starlette, pytest.mark.slow)
    ),
    A2ADeployment("flask-gunicorn", _real("flask", "gunicorn"), (pytest.mark.flask, pytest.mark.slow)),
    A2ADeployment("django-gunicorn", _real("django", "gunicorn"), (pytest.mark.django, pytest.mark.slow)),
    A2ADeployment("django-uvicorn", _real("django", "uvicorn"), (pytest.mark.django, pytest.mark.slow)),
    # Shared stores, several worker processes: the task index and the sessions live in the store.
    A2ADeployment(
        "starlette-uvicorn-redis",
        _real("redis", "starlette_uvicorn_redis"),
        (pytest.mark.starlette, pytest.mark.redis, pytest.mark.slow),
    ),
    A2ADeployment(
        "django-gunicorn-postgres",
        _real("django_postgres", "gunicorn_postgres"),
        (pytest.mark.django, pytest.mark.postgres, pytest.mark.slow),
    ),
    # Runs executed by Celery workers (two web processes on Redis, two workers): a task's blocking
    # answer, its stream and its cancel cross processes through the store.
    A2ADeployment(
        "starlette-uvicorn-celery",
        _real("celery", "starlette_celery"),
        (pytest.mark.starlette, pytest.mark.celery, pytest.mark.redis, pytest.mark.slow),
    ),
]
