"""With a shared store, a run listens for signals from other processes (cancel, resume) only once it
has executed for ``LISTEN_AFTER``: a short run costs no listener, and a signal sent before the listener
starts waits in the store and is taken then."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from acp_adapters import ACPService, AgentRegistry, Context, Settings
from acp_adapters.core.engine import LISTEN_AFTER
from acp_adapters.core.memory_store import MemoryStore
from acp_adapters.core.store import Signal
from acp_adapters.models import Message
from tests.helpers import run_body

from .conftest import Call

pytestmark = pytest.mark.anyio


class ListenedStore(MemoryStore):
    """The memory store, taken for a shared one (signals go through it), noting who listens."""

    shared = True

    def __init__(self) -> None:
        super().__init__()
        self.listened: list[uuid.UUID] = []

    async def send_signal(self, run_id: uuid.UUID, signal: Signal) -> None:
        await super().send_signal(run_id, signal)

    async def receive_signal(self, run_id: uuid.UUID) -> Signal:
        self.listened.append(run_id)
        return await super().receive_signal(run_id)


def registry() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    async def echo(input: list[Message]) -> AsyncIterator[Message]:
        await asyncio.sleep(LISTEN_AFTER / 10)  # a short run, but one that gives the loop turns
        for message in input:
            yield message

    @agents.agent()
    async def slow(input: list[Message], context: Context) -> AsyncIterator[str]:
        await asyncio.sleep(30)
        yield "too late"

    return agents


@pytest.fixture
async def call() -> AsyncIterator[tuple[Call, ListenedStore]]:
    store = ListenedStore()
    service = ACPService(registry(), store=store, settings=Settings())
    yield Call(service), store
    await service.aclose()


async def test_a_short_run_starts_no_listener(call: tuple[Call, ListenedStore]) -> None:
    client, store = call
    for _ in range(5):
        status, run = await client.json("POST", "/runs", run_body("echo"))
        assert status == 200 and run["status"] == "completed"
    await asyncio.sleep(LISTEN_AFTER * 2)
    assert store.listened == []


async def test_a_signal_sent_before_the_listener_starts_is_taken_when_it_does(
    call: tuple[Call, ListenedStore],
) -> None:
    client, store = call
    status, run = await client.json("POST", "/runs", run_body("slow", mode="async"))
    assert status == 202
    run_id = uuid.UUID(run["run_id"])
    # As another process would: through the store, not to the execution here.
    await store.send_signal(run_id, Signal("cancel"))
    for _ in range(200):
        status, run = await client.json("GET", f"/runs/{run_id}")
        if run["status"] == "cancelled":
            break
        await asyncio.sleep(0.02)
    assert run["status"] == "cancelled"
    assert store.listened[:1] == [run_id]
