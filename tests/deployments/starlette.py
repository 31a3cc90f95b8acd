"""The Starlette example served in process (``TestClient``) and by uvicorn."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from .base import Deployment, HttpxContractClient, Target, origin, serve


@contextlib.contextmanager
def _inprocess() -> Iterator[Target]:
    # Imported here so that a broken example fails the tests that use it, not the collection.
    from example_starlette.app import app

    # As a context manager, the client keeps one event loop alive (its portal), so runs carry on in
    # the background between requests, and the app's lifespan runs.
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as client:
        base_url = "http://testserver/acp"
        contract_client = HttpxContractClient(client, base_url)
        yield Target(base_url=base_url, client=contract_client, name="starlette-inprocess")


def uvicorn(
    *, env: dict[str, str] | None = None, port: int | None = None, name: str = "starlette-uvicorn"
) -> contextlib.AbstractContextManager[Target]:
    """The Starlette example under uvicorn, with ``env`` added to its environment, on ``port`` if given."""
    return serve(
        ["{python}", "-m", "uvicorn", "example_starlette.app:app", "--host", "{host}", "--port", "{port}"],
        env=env,
        port=port,
        name=name,
    )


def peer_of(target: Target) -> contextlib.AbstractContextManager[Target]:
    """Another starlette-uvicorn instance, with its own in-memory store (a different ACP server), on the
    port ``target`` trusts and trusting ``target``'s origin: the two may load each other's session
    history, as two servers a client moves a session between must."""
    return uvicorn(env={"ACP_TRUSTED_ORIGINS": origin(target)}, port=target.extra["peer_port"], name="peer")


def _uvicorn() -> contextlib.AbstractContextManager[Target]:
    return uvicorn()


DEPLOYMENTS = [
    Deployment("starlette-inprocess", _inprocess, (pytest.mark.starlette,)),
    Deployment("starlette-uvicorn", _uvicorn, (pytest.mark.starlette, pytest.mark.slow), real_server=True),
]
