"""Runs on Celery under load and through a Redis restart.

* 200 concurrent streams whose runs execute on two Celery workers (``starlette-uvicorn-celery``):
  each carries every event once, in order;
* a Redis restart (a private ``redis-server``, both broker and store): what it held is lost (no
  persistence), and the web process and the worker recover by themselves: new runs complete.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.deployments.base import Target
from tests.deployments.celery import starlette_celery
from tests.helpers import concurrent_streams, message
from tests.stores.redis_server import RedisServer

pytestmark = [pytest.mark.celery, pytest.mark.redis, pytest.mark.slow]


@pytest.fixture(scope="module")
def deployment() -> Iterator[Target]:
    with starlette_celery() as target:
        yield target


@pytest.mark.anyio
async def test_two_hundred_concurrent_streams_deliver_every_event_in_order(deployment: Target) -> None:
    elapsed = await concurrent_streams(deployment.base_url, count=200, parts=60)
    print(f"200 concurrent streams of 60 parts on Celery in {elapsed:.1f} s")


def run_echo(target: Target, text: str) -> dict[str, Any]:
    body = {"agent_name": "echo", "input": [message(text)], "mode": "sync"}
    answer = target.client.request("POST", "/runs", json=body)
    result: dict[str, Any] = {"http": answer.status}
    if answer.status == 200:
        result.update(answer.json())
    return result


def test_web_and_worker_recover_from_a_redis_restart() -> None:
    server = RedisServer()
    server.start()
    try:
        with starlette_celery(redis_url=server.url, workers=1) as target:
            assert run_echo(target, "before")["status"] == "completed"
            server.shutdown()  # SHUTDOWN NOSAVE: the queue and the runs are gone
            down = run_echo(target, "while down")
            assert down["http"] == 503, down  # the store (or the queue) is unreachable: never a hang
            server.start()
            deadline = time.monotonic() + 60
            while (answer := run_echo(target, "after"))["http"] != 200 or answer["status"] != "completed":
                assert time.monotonic() < deadline, answer
                time.sleep(0.5)
            for i in range(5):  # and it stays up
                assert run_echo(target, f"again {i}")["status"] == "completed"
    finally:
        server.stop()
