"""Servers for the Flask tests: ``tests.flask.app`` under gunicorn (1 worker, gthread, 32 threads)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.deployments.base import Target, serve


def gunicorn(app: str, *options: str) -> list[str]:
    """A gunicorn command line serving ``app`` on the port :func:`serve` picks."""
    return ["{python}", "-m", "gunicorn", *options, "--graceful-timeout", "3", "-b", "{host}:{port}", app]


GTHREAD = ("-w", "1", "-k", "gthread", "--threads", "32")


@pytest.fixture(scope="session")
def gthread_server() -> Iterator[Target]:
    """The test app under gunicorn (1 worker, gthread, 32 threads), started once for the session."""
    with serve(gunicorn("tests.flask.app:app", *GTHREAD), name="flask-tests-gthread") as target:
        yield target
