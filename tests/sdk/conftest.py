"""Fixtures of the official-client tests: the anyio backend and a second server for distributed sessions.

The ``target`` fixture (tests/conftest.py) gives these tests only deployments with a real server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.deployments.base import Target
from tests.deployments.starlette import peer_of


@pytest.fixture(scope="session")
def second_server(target: Target) -> Iterator[Target]:
    """Another starlette-uvicorn instance, with its own in-memory store: a different ACP server. It
    listens on the port ``target`` trusts and trusts ``target``'s origin (each names the other in
    ``ACP_TRUSTED_ORIGINS``, as the examples require), so each may load the other's session history."""
    with peer_of(target) as started:
        yield started
