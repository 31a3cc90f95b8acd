"""What agents may yield or return, and how each becomes events and output."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

from acp_adapters import ACPError, AgentRegistry, Context
from acp_adapters.models import Artifact, Error, Message, MessagePart

pytestmark = pytest.mark.anyio


class Progress(BaseModel):
    done: int


def registry() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    async def mixed(input: list[Message], context: Context) -> AsyncIterator[Any]:
        yield "a"
        yield MessagePart(content="b", content_type="text/markdown", custom_field="kept")
        yield None  # closes the first message
        yield Artifact(name="r.txt", content="c")
        yield Message(role="user", parts=[MessagePart(content="whole")])
        yield Progress(done=1)
        yield {"note": "dict"}
        await context.yield_async("nested")

    @agents.agent()
    async def returns_list(input: list[Message]) -> list[Message]:
        return [Message(parts=[MessagePart(content="1")]), Message(parts=[MessagePart(content="2")])]

    @agents.agent()
    async def returns_error(input: list[Message]) -> Error:
        return Error(code="not_found", message="nothing here")

    @agents.agent()
    async def raises_acp(input: list[Message]) -> str:
        raise ACPError("invalid_input", "no thanks", data={"why": "test"})

    @agents.agent()
    async def bad_yield(input: list[Message]) -> AsyncIterator[Any]:
        yield object()

    return agents


async def test_each_yield_kind(make_call: Any) -> None:
    call = make_call(registry())
    events = await call.stream("mixed")
    types = [e["type"] for e in events]
    assert types == [
        "run.created", "run.in-progress",
        "message.created", "message.part", "message.part", "message.completed",
        "message.created", "message.part",
        "message.completed", "message.created", "message.part", "message.completed",
        "generic", "generic",
        "message.created", "message.part", "message.completed",
        "run.completed",
    ]  # fmt: skip
    assert events[4]["part"]["custom_field"] == "kept"
    assert events[7]["part"]["name"] == "r.txt"
    assert events[12]["generic"] == {"done": 1} and events[13]["generic"] == {"note": "dict"}
    output = events[-1]["run"]["output"]
    assert [[p["content"] for p in m["parts"]] for m in output] == [["a", "b"], ["c"], ["whole"], ["nested"]]
    assert {m["role"] for m in output} == {"agent/mixed"}
    assert all(m["created_at"].endswith("Z") and m["completed_at"].endswith("Z") for m in output)


async def test_returned_values(make_call: Any) -> None:
    call = make_call(registry())
    _, run = await call.run("returns-list")
    assert [m["parts"][0]["content"] for m in run["output"]] == ["1", "2"]
    _, run = await call.run("returns-error")
    assert run["status"] == "failed" and run["error"] == {"code": "not_found", "message": "nothing here"}
    _, run = await call.run("raises-acp")
    assert run["error"] == {"code": "invalid_input", "message": "no thanks", "data": {"why": "test"}}
    _, run = await call.run("bad-yield")
    assert run["status"] == "failed" and run["error"]["code"] == "server_error"


def test_registry_rejects_bad_and_duplicate_names() -> None:
    agents = AgentRegistry()
    for bad in ("Upper", "-dash", "dash-", "under_score", "a" * 64, ""):
        with pytest.raises(ValueError, match="invalid agent name"):
            agents.add(lambda input: None, name=bad)

    @agents.agent
    def one_arg(input: list[Message]) -> str:
        """First line.

        More."""
        return ""

    definition = agents.get("one-arg")
    assert definition is not None and not definition.takes_context and definition.kind == "function"
    assert definition.manifest.description.startswith("First line.")
    with pytest.raises(ValueError, match="already registered"):
        agents.add(one_arg)
    with pytest.raises(TypeError, match="input messages"):
        agents.add(lambda: None, name="no-args")
