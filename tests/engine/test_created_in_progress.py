"""A run the engine executes at once is created in progress: its creation and its ``run.in-progress``
are one store step, and clients see the events and answers they saw when the two were written apart."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from acp_adapters import AgentRegistry
from acp_adapters.core.models import RunCreateRequest, RunStatus
from acp_adapters.core.store import EventRecord, RunRecord, Store
from acp_adapters.models import Message
from tests.helpers import run_body

pytestmark = pytest.mark.anyio


def registry(called: list[str]) -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    async def echo(input: list[Message]) -> AsyncIterator[Message]:
        called.append("echo")
        for message in input:
            yield message

    return agents


async def events_of(store: Store, run_id: uuid.UUID) -> list[str]:
    return [event.type for event in await store.read_events(run_id, 0)]


async def test_a_sync_run_logs_the_events_it_always_did_in_their_order(make_call: Any) -> None:
    call = make_call(registry([]))
    status, run = await call.run("echo")
    assert (status, run["status"]) == (200, "completed")
    assert await events_of(call.service.store, uuid.UUID(run["run_id"])) == [
        "run.created",
        "run.in-progress",
        "message.created",
        "message.part",
        "message.completed",
        "run.completed",
    ]


async def test_an_async_run_is_answered_as_created_though_it_is_stored_in_progress(make_call: Any) -> None:
    call = make_call(registry([]))
    status, run = await call.json("POST", "/runs", run_body("echo", "hi", mode="async"))
    assert (status, run["status"], run["output"]) == (202, "created", [])
    events = await call.service.store.read_events(uuid.UUID(run["run_id"]), 0)
    assert events[0].type == "run.created" and b'"status":"created"' in events[0].data
    assert events[1].type == "run.in-progress" and b'"status":"in-progress"' in events[1].data


async def test_a_run_cancelled_before_its_agent_starts_ends_cancelled_and_its_agent_never_runs(
    make_call: Any,
) -> None:
    called: list[str] = []
    call = make_call(registry(called))
    engine = call.service.engine
    await engine.ensure_started()
    request = RunCreateRequest.model_validate(run_body("echo", "hi", mode="async"))
    # Nothing suspends between the two (the memory store): the run's task has not run yet.
    run = await engine.create(request, owner=None, base_url="http://test/acp")
    cancelling = await engine.cancel(run.run_id, None)
    assert cancelling.run.status is RunStatus.CANCELLING
    with anyio.fail_after(5):
        last = await engine.wait(run.run_id)
    assert last is not None and last.type == "run.cancelled"
    assert called == []
    assert await events_of(engine.store, run.run_id) == ["run.created", "run.in-progress", "run.cancelled"]
    record = await engine.store.get_run(run.run_id)
    assert record is not None and record.run.status is RunStatus.CANCELLED


class TwoStepStore:
    """What a store of another package does with the default ``create_and_transition``: a cancel may
    move the run between its creation and its start, which then does not apply."""

    @staticmethod
    def wrap(store: Store) -> None:
        create_run = store.create_run

        async def create_then_cancel(record: RunRecord, first_event: EventRecord) -> None:
            await create_run(record, first_event)
            await store.update_run(record.run.run_id, {"status": RunStatus.CANCELLING})

        store.create_run = create_then_cancel  # type: ignore[method-assign]
        store.create_and_transition = Store.create_and_transition.__get__(store)  # type: ignore[method-assign]


async def test_a_run_moved_between_the_two_steps_of_the_default_is_not_started(make_call: Any) -> None:
    called: list[str] = []
    call = make_call(registry(called))
    TwoStepStore.wrap(call.service.store)
    status, run = await call.json("POST", "/runs", run_body("echo", "hi", mode="async"))
    assert (status, run["status"]) == (202, "created")
    run_id = uuid.UUID(run["run_id"])
    with anyio.fail_after(5):
        last = await call.service.engine.wait(run_id)
    assert last is not None and last.type == "run.cancelled"
    assert called == []
    assert await events_of(call.service.store, run_id) == ["run.created", "run.cancelled"]
