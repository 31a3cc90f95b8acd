"""The official ACP Python client (acp-sdk) against every deployment with a real server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from acp_sdk.client import Client
from acp_sdk.models import (
    ACPError,
    ErrorCode,
    Message,
    MessageAwaitRequest,
    MessageAwaitResume,
    MessageCompletedEvent,
    MessagePart,
    MessagePartEvent,
    Run,
    RunAwaitingEvent,
    RunCompletedEvent,
    RunCreatedEvent,
    RunInProgressEvent,
    RunStatus,
    TrajectoryMetadata,
)

from tests.deployments.base import TLS, Target
from tests.helpers import DEMO_AGENTS

pytestmark = pytest.mark.anyio

TIMEOUT = 30.0
FINAL = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)


@asynccontextmanager
async def client_for(target: Target) -> AsyncIterator[Client]:
    async with Client(base_url=target.base_url, timeout=TIMEOUT, verify=TLS) as client:
        yield client


def texts(run: Run) -> list[str]:
    return ["".join(p.content or "" for p in m.parts if p.content_type == "text/plain") for m in run.output]


async def poll(client: Client, run: Run, until: tuple[RunStatus, ...]) -> Run:
    for _ in range(400):
        run = await client.run_status(run_id=run.run_id)
        if run.status in until:
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run still {run.status} after 20s")


def user(text: str) -> Message:
    return Message(parts=[MessagePart(content=text, content_type="text/plain")])


async def test_ping_and_agents(target: Target) -> None:
    async with client_for(target) as client:
        await client.ping()
        names = [agent.name async for agent in client.agents()]
        assert sorted(names) == sorted(DEMO_AGENTS)
        manifest = await client.agent(name="mime-types")
        assert manifest.input_content_types == ["text/plain", "application/json"]
        with pytest.raises(ACPError) as caught:
            await client.agent(name="nobody")
        assert caught.value.error.code == ErrorCode.NOT_FOUND


@pytest.mark.parametrize("agent", ["echo", "sync-echo", "gen-echo"])
async def test_run_sync(target: Target, agent: str) -> None:
    async with client_for(target) as client:
        run = await client.run_sync([user("Hello"), user("again")], agent=agent)
        assert run.status == RunStatus.COMPLETED
        assert texts(run) == ["Hello", "again"]
        assert {m.role for m in run.output} == {f"agent/{agent}"}


async def test_run_sync_rich_outputs(target: Target) -> None:
    async with client_for(target) as client:
        artifacts = await client.run_sync("x", agent="artifact-producer")
        assert [p.name for p in artifacts.output[0].parts] == [
            None,
            "text-result.txt",
            "data.json",
            "image.png",
        ]
        encoded = await client.run_sync("x", agent="base64-encoding")
        assert [p.content_encoding for p in encoded.output[0].parts] == ["base64", "plain"]
        trajectory = await client.run_sync("find", agent="tool-trajectory")
        metadata = trajectory.output[0].parts[0].metadata
        assert isinstance(metadata, TrajectoryMetadata)
        assert metadata.tool_name == "search"


@pytest.mark.parametrize(("agent", "code"), [("failer", "invalid_input"), ("crasher", "server_error")])
async def test_failed_run(target: Target, agent: str, code: str) -> None:
    async with client_for(target) as client:
        run = await client.run_sync("x", agent=agent)
        assert run.status == RunStatus.FAILED
        assert run.error is not None
        assert run.error.code == code


async def test_unknown_agent_raises(target: Target) -> None:
    async with client_for(target) as client:
        with pytest.raises(ACPError) as caught:
            await client.run_sync("x", agent="nobody")
        assert caught.value.error.code == ErrorCode.NOT_FOUND


async def test_run_async_then_status(target: Target) -> None:
    async with client_for(target) as client:
        run = await client.run_async("later", agent="echo")
        assert run.status == RunStatus.CREATED
        done = await poll(client, run, FINAL)
        assert done.status == RunStatus.COMPLETED
        assert texts(done) == ["later"]
        events = [event async for event in client.run_events(run_id=run.run_id)]
        assert isinstance(events[0], RunCreatedEvent)
        assert isinstance(events[-1], RunCompletedEvent)


async def test_run_stream(target: Target) -> None:
    async with client_for(target) as client:
        events = [event async for event in client.run_stream("Hello", agent="echo")]
        assert [type(e) for e in events[:2]] == [RunCreatedEvent, RunInProgressEvent]
        assert isinstance(events[-1], RunCompletedEvent)
        assert texts(events[-1].run) == ["Hello"]
        parts = [e.part.content for e in events if isinstance(e, MessagePartEvent)]
        assert parts == ["Hello"]
        assert any(isinstance(e, MessageCompletedEvent) for e in events)


async def test_stream_of_many_parts(target: Target) -> None:
    async with client_for(target) as client:
        events = [event async for event in client.run_stream("500", agent="chunks")]
        parts = [e.part.content for e in events if isinstance(e, MessagePartEvent)]
        assert parts == [f"{i} " for i in range(500)]


async def test_await_and_resume_sync(target: Target) -> None:
    async with client_for(target) as client:
        run = await client.run_sync("start", agent="awaiter")
        assert run.status == RunStatus.AWAITING
        assert isinstance(run.await_request, MessageAwaitRequest)
        resumed = await client.run_resume_sync(MessageAwaitResume(message=user("hi")), run_id=run.run_id)
        assert resumed.status == RunStatus.COMPLETED
        assert resumed.await_request is None
        assert texts(resumed) == ["received: hi"]
        with pytest.raises(ACPError) as caught:
            await client.run_resume_sync(MessageAwaitResume(message=user("again")), run_id=run.run_id)
        assert caught.value.error.code == ErrorCode.INVALID_INPUT


async def test_await_and_resume_stream(target: Target) -> None:
    async with client_for(target) as client:
        first = [event async for event in client.run_stream("start", agent="awaiter")]
        assert isinstance(first[-1], RunAwaitingEvent)
        run_id = first[-1].run.run_id
        resume = MessageAwaitResume(message=user("streamed"))
        events = [event async for event in client.run_resume_stream(resume, run_id=run_id)]
        assert isinstance(events[-1], RunCompletedEvent)
        assert texts(events[-1].run) == ["received: streamed"]


async def test_await_and_resume_async(target: Target) -> None:
    async with client_for(target) as client:
        run = await client.run_sync("start", agent="awaiter")
        resumed = await client.run_resume_async(MessageAwaitResume(message=user("async")), run_id=run.run_id)
        assert resumed.run_id == run.run_id
        done = await poll(client, resumed, FINAL)
        assert texts(done) == ["received: async"]


async def test_run_cancel(target: Target) -> None:
    async with client_for(target) as client:
        run = await client.run_async(["a", "b", "c"], agent="slow-echo")
        cancelling = await client.run_cancel(run_id=run.run_id)
        assert cancelling.status in (RunStatus.CANCELLING, RunStatus.CANCELLED)
        done = await poll(client, run, FINAL)
        assert done.status == RunStatus.CANCELLED


async def test_session_on_one_server(target: Target) -> None:
    async with client_for(target) as client, client.session() as session:
        first = await session.run_sync("one", agent="echo")
        second = await session.run_sync("two", agent="history-echo")
        assert second.session_id == first.session_id
        assert texts(second) == ["one", "one", "two"]
        described = await session.refresh_session()
        assert len(described.history) == 6  # one, its echo, two, and history-echo's three
        assert all(str(url).startswith(target.base_url + "/resources/") for url in described.history)


async def test_session_shared_by_two_servers(target: Target, second_server: Target) -> None:
    # The client forwards the session descriptor from one server to the next; each loads the other's
    # history over HTTP (each names the other's exact origin in ACP_TRUSTED_ORIGINS).
    a, b = target.base_url, second_server.base_url
    async with Client(timeout=TIMEOUT, verify=TLS) as client, client.session() as session:
        first = await session.run_sync("one", agent="echo", base_url=a)
        on_b = await session.run_sync("two", agent="history-echo", base_url=b)
        assert on_b.status == RunStatus.COMPLETED, on_b.error
        assert on_b.session_id == first.session_id
        assert texts(on_b) == ["one", "one", "two"]
        back_on_a = await session.run_sync("three", agent="history-echo", base_url=a)
        assert back_on_a.status == RunStatus.COMPLETED, back_on_a.error
        assert texts(back_on_a) == ["one", "one", "two", "one", "one", "two", "three"]


async def test_fifty_simultaneous_runs(target: Target) -> None:
    async with client_for(target) as client:
        runs = await asyncio.gather(*(client.run_sync(f"client {i}", agent="echo") for i in range(50)))
        assert [texts(run) for run in runs] == [[f"client {i}"] for i in range(50)]
        assert len({run.run_id for run in runs}) == 50


async def test_sessions_are_independent(target: Target) -> None:
    async with client_for(target) as client:
        async with client.session() as one:
            await one.run_sync("mine", agent="echo")
        async with client.session() as two:
            run = await two.run_sync("yours", agent="history-echo")
            assert texts(run) == ["yours"]
            assert isinstance(run.session_id, uuid.UUID)
