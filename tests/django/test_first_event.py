"""Under ASGI, Django runs each middleware's ``process_response`` in a thread after the view returns,
and each hop back waits for a turn of the loop: a new stream's headers and first event leave before
its agent takes the loop (the agent starts once the first event has been taken), however busy the
agent. In process, through Django's own ASGI handler and the example project's middleware."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import pytest

from acp_adapters.core import engine
from tests.deployments.django import example_sites
from tests.django.asgi_request import http_scope, receive_body
from tests.helpers import run_body, sse_data

pytestmark = pytest.mark.django

PARTS = 1000  # chunks yields 1,000 parts without waiting: 64 events to a turn of the loop
BODY = json.dumps(run_body("chunks", str(PARTS), mode="stream")).encode()


# Django's handler checks the database connections as each request starts and ends (django_db).
@pytest.mark.django_db
def test_asgi_the_first_event_leaves_before_the_agent_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from acp_adapters.django.views import site
    from example_django.asgi import application

    # However slow this machine, the agent waits for its reader (the fallback start is tested apart).
    monkeypatch.setattr(engine, "STREAM_START_WAIT", 60.0)

    async def call(method: str, path: str, body: bytes, on_body: Callable[[bytes], Awaitable[None]]) -> None:
        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                assert message["status"] == 200
                answer.update(dict(message["headers"]))
            elif message.get("body"):
                await on_body(message["body"])

        answer: dict[bytes, bytes] = {}
        await asyncio.wait_for(application(http_scope(method, path), receive_body(body), send), 30)

    async def stream() -> tuple[list[str], bytes]:
        logged_at_first: list[str] = []  # the run's log when the first event is handed to the server
        sent: list[bytes] = []

        async def on_body(chunk: bytes) -> None:
            if not sent:
                run_id = uuid.UUID(sse_data(chunk)[0]["run"]["run_id"])
                logged_at_first.extend(
                    event.type for event in await site.service.store.read_events(run_id, 0)
                )
            sent.append(chunk)

        async def ignore(chunk: bytes) -> None:
            pass

        try:
            await call("GET", "/acp/ping", b"", ignore)  # Django's first request sets up what it caches
            await call("POST", "/acp/runs", BODY, on_body)
            assert site._bridge is None  # served on this loop, as under uvicorn, not through the bridge
        finally:
            for acp_site in example_sites():
                await acp_site.aclose()
        return logged_at_first, b"".join(sent)

    for acp_site in example_sites():  # (a service another test started on another loop)
        acp_site.close()
    # In the main thread, as a server runs its loop: the site serves on this loop, not the bridge's.
    logged_at_first, body = asyncio.run(stream())
    # The run is created (in progress at once), its agent has produced nothing yet.
    assert logged_at_first[0] == "run.created"
    assert not [kind for kind in logged_at_first if kind.startswith("message.")], logged_at_first
    types = [event["type"] for event in sse_data(body)]
    assert types[0] == "run.created" and types[-1] == "run.completed"
    assert types.count("message.part") == PARTS
