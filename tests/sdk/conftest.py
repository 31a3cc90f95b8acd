"""Fixtures of the official-client tests: the anyio backend and a second server for distributed sessions.

The ``target`` fixture (tests/conftest.py) gives these tests only deployments with a real server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.deployments.base import Target
from tests.deployments.starlette import DEPLOYMENTS as STARLETTE


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def second_server() -> Iterator[Target]:
    """Another starlette-uvicorn instance, with its own in-memory store: a different ACP server."""
    uvicorn = next(d for d in STARLETTE if d.name == "starlette-uvicorn")
    with uvicorn.start() as started:
        yield started
