"""Liveness over real worker processes: the example on PostgreSQL under gunicorn with 4 workers, a worker
killed with SIGKILL in the middle of a run. The run ends failed within the lease time, through the
other workers, whether it was in progress or awaiting."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from tests.deployments.base import Target
from tests.deployments.django_postgres import gunicorn_postgres

pytestmark = [pytest.mark.django, pytest.mark.postgres, pytest.mark.slow]

LEASE_TTL = 2.0
#: Lease lapse, plus one check period of the surviving workers (ttl / 3), plus slack for a busy machine.
DEADLINE = LEASE_TTL + LEASE_TTL / 3 + 3.0


@pytest.fixture(scope="module")
def server() -> Iterator[Target]:
    with gunicorn_postgres(lease_ttl=LEASE_TTL) as target:
        yield target


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    # A new connection per request: requests spread over the workers.
    with httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        yield client


def start(client: httpx.Client, server: Target, agent: str, texts: list[str]) -> str:
    body = {
        "agent_name": agent,
        "mode": "async",
        "input": [{"role": "user", "parts": [{"content": t}]} for t in texts],
    }
    response = client.post(server.base_url + "/runs", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["run_id"])


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def worker_pid(server: Target, run_id: str) -> int:
    """The pid of the gunicorn worker executing the run (from the run's ``worker`` column)."""

    def find() -> str:
        with psycopg.connect(server.extra["database_url"]) as conn:
            row = conn.execute(
                "SELECT worker FROM acp_adapters_run WHERE id = %s", (uuid.UUID(run_id),)
            ).fetchone()
        return str(row[0]) if row else ""

    pid = int(wait_for(find, 10, "the lease's first renewal").rsplit(":", 1)[1])
    # Only ever kill a worker of this test's own server.
    parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
    port = str(urlsplit(server.base_url).port)
    assert port in Path(f"/proc/{parent}/cmdline").read_bytes().decode(errors="replace"), (
        "not our gunicorn worker"
    )
    return pid


def status(client: httpx.Client, server: Target, run_id: str) -> dict[str, Any]:
    response = client.get(f"{server.base_url}/runs/{run_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def kill_and_wait_failed(client: httpx.Client, server: Target, run_id: str) -> dict[str, Any]:
    os.kill(worker_pid(server, run_id), signal.SIGKILL)
    killed = time.monotonic()
    run = wait_for(
        lambda: (seen := status(client, server, run_id))["status"] == "failed" and seen,
        DEADLINE + 5,
        "the run's failure",
    )
    assert time.monotonic() - killed < DEADLINE
    assert run["error"]["code"] == "server_error"
    assert run["error"]["message"] == "the worker running this run was lost"
    assert run["finished_at"]
    return dict(run)


def test_a_run_in_progress_fails_when_its_worker_is_killed(server: Target, client: httpx.Client) -> None:
    run_id = start(client, server, "slow-echo", [f"m{i}" for i in range(30)])
    wait_for(lambda: status(client, server, run_id)["status"] == "in-progress", 10, "in-progress")
    kill_and_wait_failed(client, server, run_id)
    events = client.get(f"{server.base_url}/runs/{run_id}/events").json()["events"]
    assert events[-1]["type"] == "run.failed"


def test_an_awaiting_run_fails_when_its_worker_is_killed(server: Target, client: httpx.Client) -> None:
    run_id = start(client, server, "awaiter", ["hello"])
    wait_for(lambda: status(client, server, run_id)["status"] == "awaiting", 10, "awaiting")
    kill_and_wait_failed(client, server, run_id)
    resume = {"run_id": run_id, "await_resume": {"type": "message", "message": {"parts": [{"content": "x"}]}}}
    late = client.post(f"{server.base_url}/runs/{run_id}", json={**resume, "mode": "sync"})
    assert late.status_code == 409, late.text


def test_the_service_goes_on_after_the_kills(server: Target, client: httpx.Client) -> None:
    # The arbiter replaced the killed workers; every request is answered, whichever worker takes it.
    for i in range(12):
        body = {"agent_name": "echo", "input": [{"role": "user", "parts": [{"content": f"after {i}"}]}]}
        response = client.post(server.base_url + "/runs", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["output"][0]["parts"][0]["content"] == f"after {i}"
