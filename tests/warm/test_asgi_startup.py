"""ASGI: the engine starts at lifespan start-up, for ACPApp served alone, ACPMiddleware around an app,
and ACPApp mounted in a host whose lifespan calls ``startup()``; not before it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from acp_adapters import AgentRegistry
from acp_adapters.asgi import ACPApp, ACPMiddleware
from tests.warm.probe import started


async def start_up(app: Any) -> list[str]:
    """Send ``lifespan.startup`` to ``app`` and return what it answered; the lifespan then ends."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    answers: list[str] = []

    async def receive() -> dict[str, Any]:
        return await inbox.get()

    async def send(message: dict[str, Any]) -> None:
        answers.append(message["type"])

    await inbox.put({"type": "lifespan.startup"})
    before = [started(service) for service in _services(app)]
    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    while "lifespan.startup.complete" not in answers and not task.done():
        await asyncio.sleep(0)
    assert before == [False] * len(before)
    assert all(started(service) for service in _services(app)), answers
    await inbox.put({"type": "lifespan.shutdown"})
    await task
    return answers


def _services(app: Any) -> list[Any]:
    return [app.acp.service] if isinstance(app, ACPMiddleware) else [app.service]


def test_acp_app_starts_at_lifespan_start_up() -> None:
    answers = asyncio.run(start_up(ACPApp(AgentRegistry())))
    assert answers == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_acp_middleware_starts_with_the_app_it_wraps() -> None:
    answers = asyncio.run(start_up(ACPMiddleware(Starlette(), AgentRegistry())))
    assert answers == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_a_mounted_acp_app_starts_from_the_host_lifespan() -> None:
    acp = ACPApp(AgentRegistry())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await acp.startup()
        yield
        await acp.aclose()

    host = Starlette(routes=[Mount("/acp", app=acp)], lifespan=lifespan)
    with TestClient(host) as client:
        assert started(acp.service) and not acp.bridged
        assert client.get("/acp/ping").status_code == 200
        assert not acp.bridged  # the request was served on the loop the engine started on
