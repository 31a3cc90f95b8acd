"""Redis stops and comes back under the examples (4 workers): clean 503 errors, a stream that ends with
an ``error`` event, then recovery without a restart of the app.

The examples run on a private ``redis-server`` (see ``redis_server.py``) that the test shuts down.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.deployments.base import Target
from tests.deployments.redis import flask_gunicorn_redis, starlette_uvicorn_redis
from tests.stores.redis_server import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

UNREACHABLE = {"code": "server_error", "message": "the store is unreachable"}


def message(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"content": text, "content_type": "text/plain"}]}


class StreamReader(threading.Thread):
    """Reads one event stream in the background, keeping each event's data."""

    def __init__(self, url: str, body: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.url, self.body = url, body
        self.events: list[dict[str, Any]] = []
        self.ended_at: float | None = None

    def run(self) -> None:
        with httpx.Client(timeout=60) as http, http.stream("POST", self.url, json=self.body) as answer:
            for line in answer.iter_lines():
                if line.startswith("data: "):
                    self.events.append(json.loads(line[6:]))
        self.ended_at = time.monotonic()


def until(check: Callable[[], bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.parametrize(
    "factory",
    [starlette_uvicorn_redis, flask_gunicorn_redis],
    ids=["starlette-uvicorn-redis", "flask-gunicorn-redis"],
)
def test_redis_outage_gives_clean_errors_then_the_api_recovers(
    server: RedisServer, factory: Callable[[str], contextlib.AbstractContextManager[Target]]
) -> None:
    with factory(server.url) as target:
        client = target.client
        done = client.request("POST", "/runs", json={"agent_name": "echo", "input": [message("before")]})
        assert done.status == 200 and done.json()["status"] == "completed", done
        run_id = done.json()["run_id"]

        body = {"agent_name": "slow-echo", "input": [message("x")] * 30, "mode": "stream"}
        stream = StreamReader(target.base_url + "/runs", body)
        stream.start()
        assert until(lambda: any(e["type"] == "message.completed" for e in stream.events), 15), stream.events

        server.shutdown()
        stopped = time.monotonic()
        # The stream ends soon, with an error event as its last word (not a hang, not a cut).
        stream.join(20)
        assert stream.ended_at is not None, "the stream did not end"
        assert stream.ended_at - stopped < 8.0
        assert stream.events[-1] == {"type": "error", "error": UNREACHABLE}
        # Requests that need the store get 503 with an ACP error, at once; the rest still works.
        for method, path, json_body in [
            ("POST", "/runs", {"agent_name": "echo", "input": [message("during")]}),
            ("GET", f"/runs/{run_id}", None),
            ("GET", f"/runs/{run_id}/events", None),
        ]:
            started = time.monotonic()
            answer = client.request(method, path, json=json_body)
            assert answer.status == 503, answer
            assert answer.json() == UNREACHABLE
            assert time.monotonic() - started < 5.0
        assert client.request("GET", "/agents").status == 200

        server.start()  # empty: its data went with the shutdown
        restarted = time.monotonic()

        def echo_works() -> bool:
            answer = client.request("POST", "/runs", json={"agent_name": "echo", "input": [message("after")]})
            return answer.status == 200 and answer.json()["status"] == "completed"

        assert until(echo_works, 15)
        assert time.monotonic() - restarted < 15
        # Every worker is back (requests on new connections reach several of them).
        for _ in range(20):
            assert echo_works()
        streamed = client.request(
            "POST", "/runs", json={"agent_name": "chunks", "input": [message("50")], "mode": "stream"}
        )
        assert streamed.status == 200
        assert streamed.sse_events()[-1].data["type"] == "run.completed"
