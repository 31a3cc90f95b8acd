"""The deployments the A2A suite runs against: each serves the demo agents over ACP and A2A from one
example app (a real server on a port), the A2A mount at ``/a2a`` beside ``/acp``.

Adding a framework: make its example serve ``/a2a`` (the A2A mount sharing the ACP mount's engine),
then add an :class:`A2ADeployment` here whose ``start`` is the framework's real-server factory from
``tests/deployments/<framework>.py`` (a context manager yielding a
:class:`~tests.deployments.base.Target` for the ``/acp`` mount), with its marks::

    A2ADeployment("flask-gunicorn", flask_deployments.gunicorn, (pytest.mark.flask, pytest.mark.slow))

Every test taking the ``a2a`` fixture (tests/a2a/conftest.py) then runs against it too; the import
of a framework that is not installed skips its entries, as tests/deployments does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.deployments.base import Target, origin
from tests.deployments.starlette import uvicorn

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


A2A_DEPLOYMENTS: list[A2ADeployment] = [
    A2ADeployment("starlette-uvicorn", uvicorn, (pytest.mark.starlette, pytest.mark.slow)),
]
