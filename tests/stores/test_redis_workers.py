"""The examples with 4 worker processes on Redis: runs go on across workers, survive a killed worker's
lease, and 200 streams at once each carry every event in order.

The contract suite already runs against these deployments (``tests/deployments/redis.py``); this adds
what needs a worker to die, a spread to be shown, or load. Each request uses a new connection, so the
requests of one run spread over the workers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from tests.deployments.base import Target
from tests.deployments.redis import django_gunicorn_redis, flask_gunicorn_redis, starlette_uvicorn_redis
from tests.helpers import concurrent_streams, message

pytestmark = [pytest.mark.redis, pytest.mark.slow]

FACTORIES: dict[str, Callable[..., contextlib.AbstractContextManager[Target]]] = {
    "starlette-uvicorn-redis": starlette_uvicorn_redis,
    "flask-gunicorn-redis": flask_gunicorn_redis,
    "django-gunicorn-redis": django_gunicorn_redis,
}
#: The lease of the deployments whose workers a test kills: their runs are found lost within about
#: 4/3 of it (the examples' own, 10 s, made that test wait 12 s per deployment).
LEASE_TTL = 3.0


@pytest.fixture(scope="module", params=list(FACTORIES))
def deployment(request: pytest.FixtureRequest) -> Iterator[Target]:
    with FACTORIES[request.param]() as target:
        target.name = request.param
        yield target


@pytest.fixture(params=list(FACTORIES))
def short_lease(request: pytest.FixtureRequest) -> Iterator[Target]:
    """A deployment of its own, with leases of ``LEASE_TTL``, for a test that kills its workers."""
    with FACTORIES[request.param](env={"ACP_LEASE_TTL": str(LEASE_TTL)}) as target:
        target.name = request.param
        yield target


def run_hash(target: Target, run_id: str) -> dict[bytes, bytes]:
    client = redis.Redis.from_url(target.extra["redis_url"])
    try:
        fields = client.hgetall(f"{target.extra['prefix']}run:{run_id}")
        assert isinstance(fields, dict)
        return fields  # type: ignore[return-value]  # no decode_responses: keys and values are bytes
    finally:
        client.close()


def worker_of(target: Target, run_id: str) -> int:
    """The pid of the worker executing the run (the store records it with the run's lease)."""
    worker = run_hash(target, run_id)[b"~worker"].decode()
    return int(worker.rsplit(":", 1)[1])


def wait_for_status(target: Target, run_id: str, statuses: set[str], within: float) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        answer = target.client.request("GET", f"/runs/{run_id}")
        assert answer.status == 200, answer
        run: dict[str, Any] = answer.json()
        if run["status"] in statuses or time.monotonic() > deadline:
            return run
        time.sleep(0.1)


def test_runs_spread_over_the_workers_and_are_served_by_any(deployment: Target) -> None:
    client = deployment.client

    def scenario(i: int) -> int:
        """Create an awaiting run, poll it, resume it (streaming the rest, or not), read it back."""
        body = {"agent_name": "awaiter", "input": [message(f"{i}")], "mode": "async"}
        created = client.request("POST", "/runs", json=body)
        assert created.status == 202, created
        run_id = created.json()["run_id"]
        assert wait_for_status(deployment, run_id, {"awaiting"}, 10)["status"] == "awaiting"
        mode = "stream" if i % 2 else "sync"
        resume = {"run_id": run_id, "await_resume": {"message": message(f"answer {i}")}, "mode": mode}
        resumed = client.request("POST", f"/runs/{run_id}", json=resume)
        assert resumed.status == 200, resumed
        if mode == "stream":
            events = resumed.sse_events()
            assert events[-1].data["type"] == "run.completed"
            ids = [int(e.id) for e in events if e.id is not None]
            assert ids == list(range(ids[0], ids[0] + len(ids)))
        else:
            assert resumed.json()["status"] == "completed"
        final = wait_for_status(deployment, run_id, {"completed"}, 10)
        assert final["output"][-1]["parts"][0]["content"] == f"received: answer {i}"
        listed = client.request("GET", f"/runs/{run_id}/events").json()["events"]
        assert listed[-1]["type"] == "run.completed"
        return worker_of(deployment, run_id)

    # Concurrent requests on new connections land on several workers (one at a time may all land on one).
    with ThreadPoolExecutor(16) as pool:
        workers = set(pool.map(scenario, range(32)))
    assert len(workers) >= 2, workers


def test_runs_are_cancelled_through_other_workers(deployment: Target) -> None:
    client = deployment.client
    runs = []
    for _ in range(8):
        body = {"agent_name": "slow-echo", "input": [message("x")] * 30, "mode": "async"}
        created = client.request("POST", "/runs", json=body)
        runs.append(created.json()["run_id"])
    for run_id in runs:
        cancelled = client.request("POST", f"/runs/{run_id}/cancel")
        assert cancelled.status == 202, cancelled
        assert cancelled.json()["status"] in ("cancelling", "cancelled")
    for run_id in runs:
        assert wait_for_status(deployment, run_id, {"cancelled"}, 10)["status"] == "cancelled"
        again = client.request("POST", f"/runs/{run_id}/cancel")
        assert again.status in (202, 409)


@pytest.mark.anyio
async def test_two_hundred_concurrent_streams_deliver_every_event_in_order(deployment: Target) -> None:
    elapsed = await concurrent_streams(deployment.base_url, count=200, parts=60)
    print(f"{deployment.name}: 200 concurrent streams of 60 parts in {elapsed:.1f} s")


def test_a_killed_workers_runs_fail_within_the_lease(short_lease: Target) -> None:
    deployment = short_lease
    client = deployment.client
    body = {"agent_name": "slow-echo", "input": [message("x")] * 120, "mode": "async"}
    going = client.request("POST", "/runs", json=body).json()["run_id"]
    waiting = client.request(
        "POST", "/runs", json={"agent_name": "awaiter", "input": [message("?")], "mode": "async"}
    )
    awaiting = waiting.json()["run_id"]
    assert wait_for_status(deployment, going, {"in-progress"}, 10)["status"] == "in-progress"
    assert wait_for_status(deployment, awaiting, {"awaiting"}, 10)["status"] == "awaiting"
    victims = {worker_of(deployment, going), worker_of(deployment, awaiting)}
    killed = time.monotonic()
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    for run_id in (going, awaiting):
        # The lease lapses after LEASE_TTL; a surviving worker notices within a renewal period (TTL / 3).
        run = wait_for_status(deployment, run_id, {"failed"}, LEASE_TTL * 2 + 10)
        assert run["status"] == "failed", run
        assert run["error"] == {"code": "server_error", "message": "the worker running this run was lost"}
        assert run["finished_at"] is not None
        events = client.request("GET", f"/runs/{run_id}/events").json()["events"]
        assert events[-1]["type"] == "run.failed"
    assert time.monotonic() - killed < LEASE_TTL * 4 / 3 + 3
    # The survivors (and any replacement worker) go on serving.
    echoed = client.request("POST", "/runs", json={"agent_name": "echo", "input": [message("still here")]})
    assert echoed.status == 200 and echoed.json()["status"] == "completed"
