"""The executor mechanics in one process, on the Redis store: a "web" service records runs and hands
them over, a "worker" service (same registry, same store) executes the jobs with ``engine.execute``,
as a Celery worker's task does. What needs real worker processes is in the other modules here.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from celery import Celery

from acp_adapters import ACPService, AgentRegistry, Context, Settings
from acp_adapters.celery import CeleryExecutor
from acp_adapters.core.executors import Executor, RunJob
from acp_adapters.models import Message
from acp_adapters.stores.redis import RedisStore
from tests.engine.conftest import Call
from tests.stores.backends import REDIS_URL

pytestmark = [pytest.mark.anyio, pytest.mark.redis, pytest.mark.celery]


class Jobs(Executor):
    """An executor that keeps the jobs it is given (the queue), for the test to hand to a worker."""

    in_process = False
    name = "test"

    def __init__(self) -> None:
        self.jobs: list[RunJob] = []

    async def submit(self, job: RunJob) -> None:
        self.jobs.append(job)


def registry() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    async def echo(input: list[Message], context: Context) -> AsyncIterator[Message]:
        for message in input:
            yield message

    @agents.agent(name="sync-loop")
    def sync_loop(input: list[Message], context: Context) -> Iterator[str]:
        """A sync generator that goes on until cancelled (checking ``context.cancelled``)."""
        for i in range(600):
            if context.cancelled:
                return
            time.sleep(0.05)
            if i == 0:
                yield "started"

    return agents


@dataclass
class Pair:
    web: Call
    worker: ACPService
    jobs: Jobs


@pytest.fixture
async def pair(prefix: str) -> AsyncIterator[Pair]:
    agents = registry()
    jobs = Jobs()
    settings = Settings(lease_ttl=2.0)
    web = ACPService(
        agents, store=RedisStore.from_url(REDIS_URL, prefix=prefix), settings=settings, executor=jobs
    )
    worker = ACPService(
        agents, store=RedisStore.from_url(REDIS_URL, prefix=prefix), settings=settings, executor=jobs
    )
    try:
        yield Pair(Call(web), worker, jobs)
    finally:
        await web.aclose()
        await worker.aclose()


async def events_of(call: Call, run_id: str) -> list[dict[str, Any]]:
    status, body = await call.json("GET", f"/runs/{run_id}/events")
    assert status == 200
    events: list[dict[str, Any]] = body["events"]
    return events


async def wait_status(call: Call, run_id: str, statuses: set[str], within: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        status, run = await call.json("GET", f"/runs/{run_id}")
        assert status == 200
        if run["status"] in statuses or time.monotonic() > deadline:
            return dict(run)
        await asyncio.sleep(0.02)


async def test_a_handed_over_run_is_queued_until_a_worker_executes_it(pair: Pair) -> None:
    status, run = await pair.web.run("echo", "hello", mode="async")
    assert status == 202 and run["status"] == "created"
    [job] = pair.jobs.jobs
    assert job == RunJob.from_json(job.to_json())  # what travels as JSON comes back the same
    assert (job.executor, str(job.run_id), job.agent_name, job.base_url) == (
        "test",
        run["run_id"],
        "echo",
        "http://test/acp",
    )
    assert (await wait_status(pair.web, run["run_id"], set(), within=0.2))["status"] == "created"
    await pair.worker.engine.execute(job)
    done = await wait_status(pair.web, run["run_id"], {"completed"})
    assert done["output"][0]["parts"][0]["content"] == "hello"
    types = [event["type"] for event in await events_of(pair.web, run["run_id"])]
    assert types == [
        "run.created",
        "run.in-progress",
        "message.created",
        "message.part",
        "message.completed",
        "run.completed",
    ]


async def test_a_run_is_executed_once_however_often_its_job_comes(pair: Pair) -> None:
    _, run = await pair.web.run("echo", "once", mode="async")
    [job] = pair.jobs.jobs
    await asyncio.gather(*(pair.worker.engine.execute(job) for _ in range(5)))
    await pair.worker.engine.execute(job)  # (and once more, after it ended)
    types = [event["type"] for event in await events_of(pair.web, run["run_id"])]
    assert types.count("run.in-progress") == 1 and types.count("message.part") == 1, types
    assert types[-1] == "run.completed"


async def test_cancel_reaches_a_sync_agent_on_the_worker(pair: Pair) -> None:
    _, run = await pair.web.run("sync-loop", mode="async")
    [job] = pair.jobs.jobs
    executing = asyncio.create_task(pair.worker.engine.execute(job))
    await wait_status(pair.web, run["run_id"], {"in-progress"})
    status, cancelling = await pair.web.json("POST", f"/runs/{run['run_id']}/cancel")
    assert status == 202 and cancelling["status"] in ("cancelling", "cancelled")
    await asyncio.wait_for(executing, 10)  # the agent saw context.cancelled and let go of its thread
    assert (await wait_status(pair.web, run["run_id"], {"cancelled"}))["status"] == "cancelled"


async def test_a_queued_run_is_cancelled_at_once_and_never_started(pair: Pair) -> None:
    _, run = await pair.web.run("echo", mode="async")
    status, cancelled = await pair.web.json("POST", f"/runs/{run['run_id']}/cancel")
    assert status == 202 and cancelled["status"] == "cancelled"
    await pair.worker.engine.execute(pair.jobs.jobs[0])
    types = [event["type"] for event in await events_of(pair.web, run["run_id"])]
    assert types == ["run.created", "run.cancelled"]


async def test_a_job_that_waited_past_max_queue_wait_fails_unstarted(pair: Pair) -> None:
    _, run = await pair.web.run("echo", mode="async")
    await asyncio.sleep(0.2)
    pair.worker.engine.settings = replace(pair.worker.engine.settings, max_queue_wait=0.1)
    await pair.worker.engine.execute(pair.jobs.jobs[0])
    failed = await wait_status(pair.web, run["run_id"], {"failed"})
    assert failed["error"] == {
        "code": "server_error",
        "message": "no worker started the run within 0.1 s (max_queue_wait)",
        "data": {"reason": "max_queue_wait"},
    }
    types = [event["type"] for event in await events_of(pair.web, run["run_id"])]
    assert types == ["run.created", "run.failed"]


async def test_a_job_nobody_takes_fails_once_its_queue_lease_lapses(prefix: str) -> None:
    # Nothing renews a queued run's lease: max_queue_wait and a lease time after its creation, any
    # process keeping leases fails it (a broker that lost the job, no worker at all).
    settings = Settings(lease_ttl=0.3, max_queue_wait=0.3)
    web = ACPService(
        registry(), store=RedisStore.from_url(REDIS_URL, prefix=prefix), settings=settings, executor=Jobs()
    )
    try:
        call = Call(web)
        _, run = await call.run("echo", mode="async")
        failed = await wait_status(call, run["run_id"], {"failed"})
        assert failed["error"]["data"] == {"reason": "max_queue_wait"}, failed
    finally:
        await web.aclose()


async def test_a_stopping_worker_fails_its_runs_with_a_reason(pair: Pair) -> None:
    _, run = await pair.web.run("sync-loop", mode="async")
    executing = asyncio.create_task(pair.worker.engine.execute(pair.jobs.jobs[0]))
    await wait_status(pair.web, run["run_id"], {"in-progress"})
    await pair.worker.engine.stop_all("the Celery worker stopped before the run ended")
    # the reason (worker_shutdown), not the time, is what tells it from a lost lease
    failed = await wait_status(pair.web, run["run_id"], {"failed"}, within=5.0)
    assert failed["error"] == {
        "code": "server_error",
        "message": "the Celery worker stopped before the run ended",
        "data": {"reason": "worker_shutdown"},
    }
    await asyncio.wait_for(executing, 10)


async def test_the_broker_unreachable_is_a_503_and_the_run_fails(prefix: str) -> None:
    app = Celery("unreachable", broker="redis://127.0.0.1:1/0", set_as_current=False)
    app.conf.broker_connection_timeout = 1
    executor = CeleryExecutor(app, name=f"unreachable-{uuid.uuid4().hex[:6]}")
    web = ACPService(registry(), store=RedisStore.from_url(REDIS_URL, prefix=prefix), executor=executor)
    try:
        call = Call(web)
        status, error = await call.run("echo", mode="async")
        assert (status, error["message"]) == (503, "the task queue is unreachable")
    finally:
        await web.aclose()


def test_the_celery_executor_needs_a_shared_store() -> None:
    executor = CeleryExecutor(Celery("x", set_as_current=False), name=f"memory-{uuid.uuid4().hex[:6]}")
    with pytest.raises(ValueError, match="needs a shared store"):
        ACPService(registry(), executor=executor)


def test_one_celery_executor_serves_one_mount(prefix: str) -> None:
    executor = CeleryExecutor(Celery("x", set_as_current=False), name=f"mount-{uuid.uuid4().hex[:6]}")
    ACPService(registry(), store=RedisStore.from_url(REDIS_URL, prefix=prefix), executor=executor)
    with pytest.raises(ValueError, match="executor of its own"):
        ACPService(registry(), store=RedisStore.from_url(REDIS_URL, prefix=prefix), executor=executor)


def test_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="needs an Executor"):
        ACPService(registry(), executor="celery")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a Celery app"):
        CeleryExecutor("proj")
    with pytest.raises(ValueError, match="shutdown_grace"):
        CeleryExecutor(Celery("x", set_as_current=False), shutdown_grace=-1)


def test_max_queue_wait_is_a_setting() -> None:
    assert Settings().max_queue_wait == 300.0
    assert Settings.from_env({"ACP_MAX_QUEUE_WAIT": "2.5"}).max_queue_wait == 2.5
    with pytest.raises(ValueError, match="max_queue_wait must be a positive number"):
        Settings.from_env({"ACP_MAX_QUEUE_WAIT": "0"})
    with pytest.raises(ValueError, match="max_queue_wait"):
        Settings(max_queue_wait=-1)
