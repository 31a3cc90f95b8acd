"""Mistakes caught where they are made: agents' signatures at registration, settings at construction,
and what an agent yields (the official SDK's models taken as ours, anything else failing the run with
its type named)."""

from __future__ import annotations

import importlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from acp_adapters import AgentRegistry, Context, Settings
from acp_adapters.models import Message
from tests.helpers import resume_body

sdk: Any = importlib.import_module("acp_sdk.models")  # (`import acp_sdk.models` finds its submodule)

# --- signatures ----------------------------------------------------------------------------------


def three(input: Any, context: Any, extra: Any) -> None: ...


def none_at_all() -> None: ...


def keyword_only(input: Any, *, key: Any) -> None: ...


@pytest.mark.parametrize(
    ("func", "why"),
    [
        (three, "it takes 3 required positional arguments"),
        (none_at_all, "it takes no positional argument"),
        (keyword_only, "keyword-only argument(s) key have no default"),
    ],
)
def test_a_signature_no_run_can_call_fails_at_registration(func: Any, why: str) -> None:
    agents = AgentRegistry()
    with pytest.raises(TypeError) as caught:
        agents.agent(name="broken")(func)
    message = str(caught.value)
    assert message.startswith(f"agent 'broken', {func.__qualname__}(")
    assert why in message and "(input) or (input, context)" in message
    assert "broken" not in agents


def test_signatures_that_can_be_called_register() -> None:
    agents = AgentRegistry()

    def with_defaults(input: Any, context: Any = None, extra: int = 1, *, flag: bool = False) -> None: ...

    def star_args(*args: Any) -> None: ...

    def only_input(input: Any, extra: int = 1) -> None: ...

    class Callable:
        def __call__(self, input: Any) -> None: ...

    assert agents.add(with_defaults, name="a").takes_context
    assert agents.add(star_args, name="b").takes_context
    assert agents.add(only_input, name="c").takes_context  # (called with the context as `extra`)
    assert not agents.add(Callable(), name="d").takes_context
    assert not agents.add(lambda input, **kw: None, name="e").takes_context


def test_settings_of_the_wrong_type_fail_when_made() -> None:
    with pytest.raises(ValueError, match="await_timeout must be a number, not '300'"):
        Settings(await_timeout="300")  # type: ignore[arg-type]  # the mistake under test
    with pytest.raises(ValueError, match="debug must be True or False"):
        Settings(debug="yes")  # type: ignore[arg-type]  # the mistake under test
    with pytest.raises(ValueError, match="max_active_runs must be at least 1"):
        Settings(max_active_runs=0)


# --- the official SDK's models -------------------------------------------------------------------


def sdk_registry() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    async def sdk_parts(input: list[Message], context: Context) -> AsyncIterator[Any]:
        yield sdk.MessagePart(content="a")
        yield sdk.MessagePart(content="b", content_type="text/markdown")
        yield sdk.Artifact(name="r.txt", content="c")
        yield None
        yield sdk.Message(parts=[sdk.MessagePart(content="whole")])

    @agents.agent()
    def sdk_sync(input: list[Message]) -> Iterator[Any]:
        yield sdk.Message(role="agent", parts=[sdk.MessagePart(content="from a thread")])

    @agents.agent()
    async def sdk_returns(input: list[Message]) -> Any:
        return [sdk.Message(parts=[sdk.MessagePart(content="1")]), sdk.MessagePart(content="2")]

    @agents.agent()
    async def sdk_await(input: list[Message], context: Context) -> AsyncGenerator[Any, Any]:
        resume = yield sdk.MessageAwaitRequest(message=sdk.Message(parts=[sdk.MessagePart(content="ok?")]))
        yield f"you said {resume.message.parts[0].content}"

    @agents.agent()
    async def sdk_error(input: list[Message]) -> AsyncIterator[Any]:
        yield "partial"
        yield sdk.Error(code=sdk.ErrorCode.INVALID_INPUT, message="no thanks")

    @agents.agent()
    async def sdk_raises(input: list[Message]) -> AsyncIterator[Any]:
        yield "partial"
        raise sdk.ACPError(sdk.Error(code=sdk.ErrorCode.NOT_FOUND, message="no such thing"))

    @agents.agent()
    async def sdk_bad_error(input: list[Message]) -> AsyncIterator[Any]:
        yield sdk.Error(code="teapot", message="?")

    @agents.agent()
    async def yields_exception(input: list[Message]) -> AsyncIterator[Any]:
        yield ValueError("bad input")

    return agents


@pytest.mark.anyio
async def test_sdk_parts_and_messages_become_output(make_call: Any) -> None:
    call = make_call(sdk_registry())
    events = await call.stream("sdk-parts")
    assert [e["type"] for e in events] == [
        "run.created", "run.in-progress",
        "message.created", "message.part", "message.part", "message.part", "message.completed",
        "message.created", "message.part", "message.completed",
        "run.completed",
    ]  # fmt: skip
    assert events[4]["part"]["content_type"] == "text/markdown"
    assert events[5]["part"]["name"] == "r.txt"
    output = events[-1]["run"]["output"]
    assert [[p["content"] for p in m["parts"]] for m in output] == [["a", "b", "c"], ["whole"]]
    assert {m["role"] for m in output} == {"agent/sdk-parts"}

    _, run = await call.run("sdk-sync")
    assert run["status"] == "completed" and run["output"][0]["parts"][0]["content"] == "from a thread"
    assert run["output"][0]["role"] == "agent/sdk-sync"
    _, run = await call.run("sdk-returns")
    assert [[p["content"] for p in m["parts"]] for m in run["output"]] == [["1"], ["2"]]


@pytest.mark.anyio
async def test_sdk_await_request_awaits(make_call: Any) -> None:
    call = make_call(sdk_registry())
    _, run = await call.run("sdk-await")
    assert run["status"] == "awaiting"
    assert run["await_request"]["message"]["parts"][0]["content"] == "ok?"
    _, run = await call.json("POST", f"/runs/{run['run_id']}", resume_body("yes"))
    assert run["status"] == "completed" and run["output"][-1]["parts"][0]["content"] == "you said yes"


@pytest.mark.anyio
async def test_sdk_errors_fail_the_run_with_their_error(make_call: Any) -> None:
    call = make_call(sdk_registry())
    _, run = await call.run("sdk-error")
    assert run["status"] == "failed"
    assert run["error"] == {"code": "invalid_input", "message": "no thanks"}
    _, run = await call.run("sdk-raises")
    assert run["error"] == {"code": "not_found", "message": "no such thing"}
    _, run = await call.run("sdk-bad-error")
    assert run["status"] == "failed" and run["error"]["data"]["type"] == "acp_sdk.models.errors.Error"
    assert "not valid ACP: code:" in run["error"]["message"]


@pytest.mark.anyio
async def test_a_yielded_exception_is_raised(make_call: Any) -> None:
    call = make_call(sdk_registry(), debug=True)
    _, run = await call.run("yields-exception")
    assert run["status"] == "failed"
    assert run["error"]["message"] == "the agent failed: ValueError: bad input"


# --- values no run can carry ---------------------------------------------------------------------


class AIMessage(BaseModel):  # another library's message (a LangChain-like one)
    content: str


class Progress(BaseModel):
    done: int


def wrong_registry() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    def returns_int(input: list[Message]) -> int:
        return 42

    @agents.agent()
    async def yields_object(input: list[Message]) -> AsyncIterator[Any]:
        yield "partial"
        yield object()

    @agents.agent()
    def yields_bytes(input: list[Message]) -> Iterator[Any]:
        yield b"raw"

    @agents.agent()
    async def foreign_message(input: list[Message]) -> AsyncIterator[Any]:
        yield AIMessage(content="hello")

    @agents.agent()
    async def progress(input: list[Message]) -> AsyncIterator[Any]:
        yield Progress(done=1)  # a model of the agent's own: a generic event, as documented
        yield {"step": 2}
        yield "done"

    return agents


@pytest.mark.anyio
@pytest.mark.parametrize("debug", [False, True])
async def test_a_value_acp_cannot_carry_fails_the_run_naming_its_type(make_call: Any, debug: bool) -> None:
    call = make_call(wrong_registry(), debug=debug)
    cases = {
        "returns-int": "int",
        "yields-object": "object",
        "yields-bytes": "bytes",
    }
    for agent, kind in cases.items():
        _, run = await call.run(agent)
        assert run["status"] == "failed", agent
        error = run["error"]
        assert error["code"] == "server_error"
        assert error["message"].startswith(
            f"agent {agent} yielded a value of type {kind}, which ACP cannot carry (an agent yields str,"
        )
        expected = {"reason": "unsendable_value", "type": kind}
        assert error["data"] == ({**expected, "exception": "TypeError"} if debug else expected)


@pytest.mark.anyio
async def test_a_foreign_message_is_never_a_silent_generic_event(make_call: Any) -> None:
    call = make_call(wrong_registry())
    events = await call.stream("foreign-message")
    assert "generic" not in [e["type"] for e in events]
    failed = events[-1]
    assert failed["type"] == "run.failed"
    kind = f"{__name__}.AIMessage"
    assert failed["run"]["error"]["message"] == (
        f"agent foreign-message yielded a {kind}, which is not an ACP message: yield "
        "acp_adapters.models.Message or MessagePart (or a str) made from it, or its "
        ".model_dump() for a generic event"
    )
    assert failed["run"]["error"]["data"]["type"] == kind


@pytest.mark.anyio
async def test_own_models_and_dicts_stay_generic_events(make_call: Any) -> None:
    call = make_call(wrong_registry())
    events = await call.stream("progress")
    generic = [e["generic"] for e in events if e["type"] == "generic"]
    assert generic == [{"done": 1}, {"step": 2}]
    assert events[-1]["type"] == "run.completed"
