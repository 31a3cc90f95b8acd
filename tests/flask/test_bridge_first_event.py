"""The bridge gives a stream's first chunk with its headers, taken before the agent's first turn, and
the rest through the pump; a stream that fails or ends at once gives an empty body, never a 5xx."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable

import pytest

from acp_adapters.bridge import _LOOP, FIRST_WRITE_WAIT, SyncBridge, SyncStreamBody, SyncStreamResponse
from acp_adapters.core.http import Request
from acp_adapters.core.service import ACPService
from acp_adapters.stores.redis import RedisStore
from example_agents import demo_registry
from tests.deployments.base import require_service
from tests.helpers import run_body

pytestmark = pytest.mark.flask


def stream_request(agent: str, text: str) -> Request:
    body = json.dumps(run_body(agent, text, mode="stream")).encode()
    return Request(
        "POST", "/runs", "http://testserver/acp", headers={"content-type": "application/json"}, body=body
    )


def events_of(chunk: bytes) -> list[str]:
    return [json.loads(line[6:])["type"] for line in chunk.split(b"\n") if line.startswith(b"data: ")]


def test_the_first_chunk_is_the_run_created_event_alone_however_busy_the_agent() -> None:
    bridge = SyncBridge(ACPService(demo_registry()))
    answer = bridge.handle(stream_request("chunks", "1000"))
    assert isinstance(answer, SyncStreamResponse) and answer.status == 200
    body = answer.body
    try:
        first = next(body)
        # Taken before the agent ran at all: 1,000 parts would otherwise be on their way.
        assert events_of(first) == ["run.created"]
        rest = b"".join(body)
    finally:
        body.close()
    types = events_of(rest)
    assert types[0] == "run.in-progress" and types[-1] == "run.completed"
    assert types.count("message.part") == 1000


def test_a_reader_that_never_writes_holds_the_loop_a_few_milliseconds_at_most() -> None:
    bridge = SyncBridge(ACPService(demo_registry()))
    answer = bridge.handle(stream_request("chunks", "10"))
    assert isinstance(answer, SyncStreamResponse)
    # The first chunk is never asked for: the loop waited FIRST_WRITE_WAIT for it, then went on.
    started = time.monotonic()
    ping = bridge.handle(Request("GET", "/ping", "http://testserver/acp"))
    assert ping.status == 200
    assert time.monotonic() - started < FIRST_WRITE_WAIT + 1.0
    answer.body.close()


async def broken_stream() -> AsyncIterator[bytes]:
    for chunk in (b"",):
        if chunk == b"":
            raise RuntimeError("the store broke")
        yield chunk


async def empty_stream() -> AsyncIterator[bytes]:
    nothing: tuple[bytes, ...] = ()
    for chunk in nothing:
        yield chunk


@pytest.mark.parametrize(("source", "logged"), [(broken_stream, True), (empty_stream, False)])
def test_a_stream_that_fails_or_ends_at_its_first_step_is_an_empty_body(
    source: Callable[[], AsyncIterator[bytes]], logged: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="acp_adapters"):
        body = _LOOP.current().call(SyncStreamBody.start, source())
    assert list(body) == []
    body.close()
    assert ("an event stream failed" in caplog.text) is logged


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_the_first_event_of_a_new_stream_is_the_logged_one_byte_for_byte(store: str) -> None:
    # The service sends a new run's run.created without reading it back from the store.
    shared = None
    if store == "redis":
        require_service("127.0.0.1", 6379, "Redis")
        shared = RedisStore.from_url("redis://127.0.0.1:6379/0")
    bridge = SyncBridge(ACPService(demo_registry(), store=shared))
    try:
        answer = bridge.handle(stream_request("chunks", "3"))
        assert isinstance(answer, SyncStreamResponse)
        streamed = b"".join(answer.body)
        answer.body.close()
        run_id = dict(answer.headers)["run-id"]
        logged = bridge.handle(Request("GET", f"/runs/{run_id}/events", "http://testserver/acp"))
        assert not isinstance(logged, SyncStreamResponse)
        events = json.loads(logged.body)["events"]
        first = streamed.split(b"\n\n")[0]
        assert first == b"id: 0\ndata: " + json.dumps(events[0], separators=(",", ":")).encode()
        assert events_of(streamed) == [event["type"] for event in events]
    finally:
        bridge.close()
