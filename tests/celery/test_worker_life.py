"""Celery worker processes executing the examples' runs: each pool with sync and async agents, a worker
killed mid-run, a warm shutdown mid-run, a job delivered several times, a run nobody takes.

One web process (the Starlette example, ``ACP_EXECUTOR=celery`` on Redis, leases of 2 s) serves the
module; each test starts the workers it needs (``celery -A example_agents.worker worker``) and stops
them. The broker queue is the module's own.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from celery import Celery

from acp_adapters.celery import TASK_NAME
from tests.deployments.base import Target, require_service, serve
from tests.deployments.celery import CeleryWorkers, celery_env, celery_workers
from tests.deployments.redis import store_url
from tests.stores.backends import REDIS_URL, delete_prefix, redis_address

pytestmark = [pytest.mark.celery, pytest.mark.redis, pytest.mark.slow]

LEASE_TTL = 2.0
MAX_QUEUE_WAIT = 3.0


@dataclass
class Web:
    target: Target
    env: dict[str, str]
    prefix: str

    @contextlib.contextmanager
    def workers(self, *, pool: str = "threads", count: int = 1, **env: str) -> Iterator[CeleryWorkers]:
        concurrency = 2 if pool == "prefork" else 4
        with celery_workers({**self.env, **env}, count=count, pool=pool, concurrency=concurrency) as started:
            yield started


@pytest.fixture(scope="module")
def web() -> Iterator[Web]:
    host, port = redis_address(REDIS_URL)
    require_service(host, port, f"Redis ({REDIS_URL})")
    prefix = f"acp-celery-life-{uuid.uuid4().hex[:8]}:"
    env = celery_env(
        REDIS_URL,
        ACP_STORE=store_url(prefix),
        ACP_LEASE_TTL=str(LEASE_TTL),
        ACP_MAX_QUEUE_WAIT=str(MAX_QUEUE_WAIT),
    )
    command = [
        "{python}",
        "-m",
        "uvicorn",
        "example_starlette.app:app",
        "--host",
        "{host}",
        "--port",
        "{port}",
    ]
    try:
        with serve(command, env=env, name="celery-life") as target:
            yield Web(target, env, prefix)
    finally:
        delete_prefix(REDIS_URL, prefix)
        client = redis.Redis.from_url(REDIS_URL)
        client.delete(env["ACP_CELERY_QUEUE"], f"_kombu.binding.{env['ACP_CELERY_QUEUE']}")
        client.close()


def message(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"content": text, "content_type": "text/plain"}]}


def create(web: Web, agent: str, *texts: str, mode: str = "async") -> dict[str, Any]:
    body = {"agent_name": agent, "input": [message(text) for text in texts or ("hi",)], "mode": mode}
    answer = web.target.client.request("POST", "/runs", json=body)
    assert answer.status in (200, 202), answer
    run: dict[str, Any] = answer.json()
    return run


def wait_for(web: Web, run_id: str, statuses: set[str], within: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        answer = web.target.client.request("GET", f"/runs/{run_id}")
        assert answer.status == 200, answer
        run: dict[str, Any] = answer.json()
        if run["status"] in statuses or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


def event_types(web: Web, run_id: str) -> list[str]:
    return [
        event["type"] for event in web.target.client.request("GET", f"/runs/{run_id}/events").json()["events"]
    ]


def texts(run: dict[str, Any]) -> list[str]:
    return [part["content"] for message in run["output"] for part in message["parts"]]


def executing_pid(web: Web, run_id: str) -> int:
    """The process holding the run's lease (the store records ``host:pid`` with it)."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        worker = client.hget(f"{web.prefix}run:{run_id}", "~worker")
    finally:
        client.close()
    assert isinstance(worker, bytes)
    return int(worker.decode().rsplit(":", 1)[1])


@pytest.mark.parametrize("pool", ["threads", "prefork", "solo"])
def test_each_pool_executes_sync_and_async_agents(web: Web, pool: str) -> None:
    with web.workers(pool=pool) as workers:
        for agent in ("echo", "sync-echo", "gen-echo"):  # async generator, sync function, sync generator
            run = create(web, agent, "one", "two", mode="sync")
            assert (run["status"], texts(run)) == ("completed", ["one", "two"]), (agent, run)
        awaiting = create(web, "awaiter", mode="sync")
        assert awaiting["status"] == "awaiting", awaiting
        resume = {"await_resume": {"type": "message", "message": message("yes")}, "mode": "sync"}
        resumed = web.target.client.request("POST", f"/runs/{awaiting['run_id']}", json=resume).json()
        assert (resumed["status"], texts(resumed)) == ("completed", ["received: yes"]), resumed
        slow = create(web, "slow-echo", "a", "b", "c", "d")
        assert wait_for(web, slow["run_id"], {"in-progress"})["status"] == "in-progress"
        assert web.target.client.request("POST", f"/runs/{slow['run_id']}/cancel").status == 202
        cancelled = wait_for(web, slow["run_id"], {"cancelled"}, within=10)
        assert cancelled["status"] == "cancelled" and len(cancelled["output"]) < 4, cancelled
        executed_by = executing_pid(web, awaiting["run_id"])
        main = workers.workers[0].process.pid
        assert (executed_by == main) is (pool != "prefork"), (pool, executed_by, main)


def test_a_worker_killed_mid_run_fails_its_runs_within_the_lease(web: Web) -> None:
    with web.workers() as workers:
        going = create(web, "slow-echo", *["x"] * 60)
        awaiting = create(web, "awaiter")
        assert wait_for(web, going["run_id"], {"in-progress"})["status"] == "in-progress"
        assert wait_for(web, awaiting["run_id"], {"awaiting"})["status"] == "awaiting"
        [worker] = workers.workers
        assert executing_pid(web, going["run_id"]) == worker.process.pid
        killed = time.monotonic()
        workers.kill(worker, signal.SIGKILL)
        for run_id in (going["run_id"], awaiting["run_id"]):
            run = wait_for(web, run_id, {"failed"}, within=LEASE_TTL * 2 + 10)
            assert run["error"] == {"code": "server_error", "message": "the worker running this run was lost"}
            assert event_types(web, run_id)[-1] == "run.failed"
        # The web process keeping leases notices within a renewal period (a third of the lease).
        assert time.monotonic() - killed < LEASE_TTL * 4 / 3 + 3


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_a_warm_shutdown_lets_runs_finish_within_the_grace_then_fails_them(web: Web, pool: str) -> None:
    grace = 3.0
    with web.workers(pool=pool, ACP_CELERY_SHUTDOWN_GRACE=str(grace)) as workers:
        short = create(web, "slow-echo", "a")  # one second
        long = create(web, "slow-echo", *["b"] * 60)
        assert wait_for(web, short["run_id"], {"in-progress"})["status"] == "in-progress"
        assert wait_for(web, long["run_id"], {"in-progress"})["status"] == "in-progress"
        [worker] = workers.workers
        stopping = time.monotonic()
        worker.process.send_signal(signal.SIGTERM)  # what a deploy sends: the warm shutdown
        assert wait_for(web, short["run_id"], {"completed", "failed"})["status"] == "completed"
        failed = wait_for(web, long["run_id"], {"failed"}, within=grace + 15)
        assert failed["error"] == {
            "code": "server_error",
            "message": "the Celery worker stopped before the run ended",
            "data": {"reason": "worker_shutdown"},
        }
        assert grace - 0.5 < time.monotonic() - stopping < grace + 10
        assert worker.process.wait(30) == 0


def test_a_job_delivered_again_is_not_executed_twice(web: Web) -> None:
    with web.workers(count=2):
        run = create(web, "chunks", "200")
        job = {
            "executor": "acp",
            "run_id": run["run_id"],
            "agent_name": "chunks",
            "input": [message("200")],
            "session": {"id": run["session_id"], "history": [], "state": None, "record": False},
            "owner": None,
            "base_url": web.target.base_url,
        }
        app = Celery("duplicates", broker=REDIS_URL, set_as_current=False)
        for _ in range(3):  # a broker redelivering, a retry, an operator replaying the queue
            app.send_task(TASK_NAME, args=[job], queue=web.env["ACP_CELERY_QUEUE"])
        assert wait_for(web, run["run_id"], {"completed"})["status"] == "completed"
        time.sleep(1)  # (the duplicates have been taken by now)
        types = event_types(web, run["run_id"])
        assert types.count("run.in-progress") == 1 and types.count("message.part") == 200, types
        assert types.count("run.completed") == 1


def test_a_run_nobody_takes_fails_past_max_queue_wait(web: Web) -> None:
    run = create(web, "echo")  # no worker is running
    failed = wait_for(web, run["run_id"], {"failed"}, within=MAX_QUEUE_WAIT + LEASE_TTL + 10)
    assert failed["error"] == {
        "code": "server_error",
        "message": f"no worker started the run within {MAX_QUEUE_WAIT:g} s (max_queue_wait)",
        "data": {"reason": "max_queue_wait"},
    }
    with web.workers():  # a worker taking the job later does not start it
        assert create(web, "echo", mode="sync")["status"] == "completed"
    assert event_types(web, run["run_id"]) == ["run.created", "run.failed"]


def test_workers_stopped_by_the_fixture_leave_no_process(web: Web) -> None:
    with web.workers() as workers:
        pids = [worker.process.pid for worker in workers.workers]
    for pid in pids:
        assert subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0
