"""A sync run nobody else can know of is written with its first write of its own (its ending, its
await) or once it has executed for ``LISTEN_AFTER`` (acp_adapters.core.run_writes): whatever the
moment, another worker on the same store sees what it would see of any run. Two services over one
store play two worker processes; every backend (the memory store, of one process, writes at once and
is one worker: it must agree)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import pytest

from acp_adapters import ACPService, AgentRegistry, Context, Settings
from acp_adapters.core.http import Response
from acp_adapters.core.models import Message, MessageAwaitRequest, MessageAwaitResume
from tests.engine.conftest import call as service_call
from tests.helpers import resume_body, run_body
from tests.stores.backends import StoreScope

pytestmark = pytest.mark.anyio

#: The run ids the agents were called with (the test's way to know a sync run's id before its answer).
STARTED: list[uuid.UUID] = []


def registry() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent(name="echo")
    async def echo(input: list[Message]) -> AsyncIterator[Message]:
        for message in input:
            yield message

    @agents.agent(name="slow")
    async def slow(input: list[Message], context: Context) -> AsyncIterator[Message]:
        STARTED.append(context.run_id)
        yield input[0]
        await asyncio.sleep(30)  # until cancelled
        yield input[0]

    @agents.agent(name="asks")
    async def asks(input: list[Message]) -> AsyncGenerator[Any, Any]:
        answer = yield MessageAwaitRequest(message=Message(role="agent/asks", parts=input[0].parts))
        assert isinstance(answer, MessageAwaitResume)
        yield answer.message

    @agents.agent(name="fails")
    async def fails(input: list[Message]) -> AsyncIterator[Message]:
        yield input[0]
        raise RuntimeError("no")

    return agents


async def call(service: ACPService, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    response = await service_call(service, method, path, body, headers={})
    assert isinstance(response, Response)
    return response.status, json.loads(response.body) if response.body else None


@pytest.fixture
async def workers(stores: StoreScope) -> AsyncIterator[tuple[ACPService, ACPService]]:
    first = await stores.open()
    services = [ACPService(registry(), store=first, settings=Settings())]
    if first.shared:  # (a store of one process: one worker plays both)
        services.append(ACPService(registry(), store=await stores.open(), settings=Settings()))
    yield services[0], services[-1]
    for service in services:
        await service.aclose()


async def test_a_short_sync_run_is_read_whole_by_another_worker(
    workers: tuple[ACPService, ACPService],
) -> None:
    here, there = workers
    for agent, status in (("echo", "completed"), ("fails", "failed")):
        code, run = await call(here, "POST", "/runs", run_body(agent, "hi"))
        assert (code, run["status"]) == (200, status)
        code, seen = await call(there, "GET", f"/runs/{run['run_id']}")
        assert code == 200 and seen["status"] == status and seen["output"] == run["output"]
        code, listed = await call(there, "GET", f"/runs/{run['run_id']}/events")
        types = [event["type"] for event in listed["events"]]
        assert types == [
            "run.created",
            "run.in-progress",
            "message.created",
            "message.part",
            "message.completed",
            f"run.{status}",
        ]


async def test_a_sync_run_that_lasts_is_in_the_store_and_another_worker_cancels_it(
    workers: tuple[ACPService, ACPService],
) -> None:
    here, there = workers
    STARTED.clear()
    answer = asyncio.ensure_future(call(here, "POST", "/runs", run_body("slow", "hi")))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if STARTED:
            break
    run_id = STARTED[0]
    await asyncio.sleep(0.3)  # past LISTEN_AFTER: written, and listening for signals
    code, seen = await call(there, "GET", f"/runs/{run_id}")
    assert (code, seen["status"]) == (200, "in-progress")
    code, listed = await call(there, "GET", f"/runs/{run_id}/events")
    assert [event["type"] for event in listed["events"]][:3] == [
        "run.created",
        "run.in-progress",
        "message.created",
    ]
    code, _ = await call(there, "POST", f"/runs/{run_id}/cancel")
    assert code == 202
    code, run = await asyncio.wait_for(answer, 10)
    assert (code, run["run_id"], run["status"]) == (200, str(run_id), "cancelled")
    code, seen = await call(there, "GET", f"/runs/{run_id}")
    assert seen["status"] == "cancelled"


async def test_a_sync_run_that_awaits_is_resumed_through_another_worker(
    workers: tuple[ACPService, ACPService],
) -> None:
    here, there = workers
    code, run = await call(here, "POST", "/runs", run_body("asks", "what?"))
    assert (code, run["status"]) == (200, "awaiting")
    code, seen = await call(there, "GET", f"/runs/{run['run_id']}")
    assert (code, seen["status"]) == (200, "awaiting")
    code, resumed = await call(there, "POST", f"/runs/{run['run_id']}", resume_body("this"))
    assert (code, resumed["status"]) == (200, "completed")
    code, listed = await call(there, "GET", f"/runs/{run['run_id']}/events")
    types = [event["type"] for event in listed["events"]]
    assert types[:2] == ["run.created", "run.in-progress"] and "run.awaiting" in types
    assert types[-1] == "run.completed"
