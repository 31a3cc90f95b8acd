"""acp_adapters.testing: run_agent, AgentTestClient and AsyncAgentTestClient, on the demo agents."""

from __future__ import annotations

import uuid

import acp_sdk.models as sdk
import anyio
import pytest

from acp_adapters import Settings
from acp_adapters.models import Message, MessagePart, RunStatus
from acp_adapters.testing import (
    AgentTestClient,
    AsyncAgentTestClient,
    Input,
    Mode,
    RequestFailed,
    arun_agent,
    messages_of,
    run_agent,
)
from example_agents import demo_registry

from .conftest import LIMIT, within

AGENTS = demo_registry()
EVENTS = ["run.created", "run.in-progress", "message.created", "message.part", "message.completed"]


@pytest.mark.parametrize("mode", ["sync", "async", "stream"])
def test_run_agent_gives_the_ended_run_its_output_and_events_in_every_mode(mode: Mode) -> None:
    result = within(LIMIT, lambda: run_agent(AGENTS, "echo", "hi", mode=mode))
    assert result.status is RunStatus.COMPLETED
    assert result.text == "hi"
    assert [m.role for m in result.output] == ["agent/echo"]
    assert [event.type for event in result.events] == [*EVENTS, "run.completed"]


@pytest.mark.parametrize(
    "given",
    [
        "one",
        Message(parts=[MessagePart(content="one")]),
        [Message(parts=[MessagePart(content="one")]), "two"],
        sdk.Message(parts=[sdk.MessagePart(content="one")]),
    ],
    ids=["str", "Message", "list", "acp_sdk-Message"],
)
def test_input_is_a_text_a_message_or_a_list(given: Input) -> None:
    expected = "onetwo" if isinstance(given, list) else "one"
    assert within(LIMIT, lambda: run_agent(AGENTS, "echo", given)).text == expected


def test_bad_input_types_are_refused_with_what_is_accepted() -> None:
    with pytest.raises(TypeError, match="a str, a Message or a list"):
        messages_of(42)  # type: ignore[arg-type]  # the mistake under test


def test_error_answers_raise_request_failed_with_the_acp_error() -> None:
    with pytest.raises(RequestFailed) as caught:
        within(LIMIT, lambda: run_agent(AGENTS, "slow_echo", "hi"))
    assert caught.value.status == 404
    assert caught.value.error.code.value == "not_found"
    assert "slow_echo" in str(caught.value)
    with pytest.raises(RequestFailed) as caught:
        within(LIMIT, lambda: run_agent(AGENTS, "echo", []))
    assert caught.value.status == 422


def test_a_failing_agent_gives_a_failed_run_not_an_exception() -> None:
    result = within(LIMIT, lambda: run_agent(AGENTS, "failer", "x"))
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.message == "Wrong question buddy!"


def test_client_resumes_cancels_waits_and_streams() -> None:
    with AgentTestClient(AGENTS) as client:
        asked = within(LIMIT, lambda: client.run("awaiter", "x"))
        assert asked.status is RunStatus.AWAITING
        assert asked.run.await_request is not None
        assert within(LIMIT, lambda: client.resume(asked.run_id, "yes")).text == "received: yes"

        slow = client.run("slow-echo", "z", mode="async")
        assert slow.status is RunStatus.CREATED
        assert client.cancel(slow.run_id).status is RunStatus.CANCELLING
        assert within(LIMIT, lambda: client.wait(slow.run_id)).status is RunStatus.CANCELLED

        types = within(LIMIT, lambda: [event.type for event in client.stream("echo", "hi")])
        assert types == [*EVENTS, "run.completed"]


def test_leaving_a_stream_early_ends_the_subscription_not_the_run() -> None:
    with AgentTestClient(AGENTS) as client:
        events = client.stream("slow-echo", "late")
        first = within(LIMIT, lambda: next(events))
        assert first.type == "run.created"
        events.close()  # type: ignore[attr-defined]  # stream() gives a generator
        ended = within(LIMIT, lambda: client.wait(first.run.run_id))
        assert ended.status is RunStatus.COMPLETED
        assert ended.text == "late"


def test_wait_times_out_naming_the_status() -> None:
    with AgentTestClient(AGENTS) as client:
        run = client.run("slow-echo", "z", mode="async")
        with pytest.raises(TimeoutError, match="still"):
            client.wait(run.run_id, timeout=0.05)


def test_owner_and_sessions_behave_as_over_http() -> None:
    with AgentTestClient(AGENTS, owner="alice") as alice:
        session = uuid.uuid4()
        alice.run("echo", "first", session_id=session)
        assert alice.run("history-echo", "second", session_id=session).text == "firstfirstsecond"
        run = alice.run("echo", "hi")
        bob = AgentTestClient(AGENTS, store=alice.service.store, owner="bob")
        with pytest.raises(RequestFailed) as caught:
            bob.get(run.run_id)
        assert caught.value.status == 404


def test_settings_reach_the_service() -> None:
    with pytest.raises(RequestFailed) as caught:
        run_agent(AGENTS, "echo", "x" * 2000, settings=Settings(max_body_size=1024))
    assert caught.value.status == 413


@pytest.mark.anyio
async def test_async_client_runs_resumes_and_streams() -> None:
    with anyio.fail_after(LIMIT):
        assert (await arun_agent(AGENTS, "echo", "hi", mode="async")).text == "hi"
        async with AsyncAgentTestClient(AGENTS) as client:
            asked = await client.run("awaiter", "x")
            assert (await client.resume(asked.run_id, "ok")).text == "received: ok"
            slow = await client.run("slow-echo", "z", mode="async")
            await client.cancel(slow.run_id)
            assert (await client.wait(slow.run_id)).status is RunStatus.CANCELLED
            assert [e.type async for e in client.stream("echo", "hi")][-1] == "run.completed"


def test_async_client_runs_outlive_the_loop_that_created_them() -> None:
    client = AsyncAgentTestClient(AGENTS)

    async def create() -> uuid.UUID:
        return (await client.run("slow-echo", "later", mode="async")).run_id

    async def wait(run_id: uuid.UUID) -> str:
        result = await client.wait(run_id)
        await client.aclose()
        return result.text

    run_id = within(LIMIT, lambda: anyio.run(create))  # that loop ends here
    assert within(LIMIT, lambda: anyio.run(wait, run_id)) == "later"
