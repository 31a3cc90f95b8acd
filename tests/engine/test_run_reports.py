"""What a process tells of its runs: the manifest's ``status`` per agent, a log line per finished run
(INFO), progress lines for long runs (DEBUG). See ``acp_adapters/core/run_reports.py``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from acp_adapters import AgentRegistry, Context
from acp_adapters.models import Error, ErrorCode, Message, MessageAwaitRequest, MessagePart
from tests.engine.conftest import Call
from tests.schema import assert_valid

pytestmark = pytest.mark.anyio

SECRET = "the-words-of-a-user-never-logged"


def reporting_agents() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    async def echo(input: list[Message], context: Context) -> AsyncIterator[Any]:
        """Echoes; counts 10 tokens per message."""
        for message in input:
            context.add_tokens(10)
            yield message

    @agents.agent()
    def quiet(input: list[Message], context: Context) -> str:
        """A sync agent that counts no tokens."""
        return "ok"

    @agents.agent()
    async def flaky(input: list[Message], context: Context) -> AsyncIterator[Any]:
        """Fails when asked to."""
        context.add_tokens(4)
        if input[0].parts[0].content == "fail":
            yield Error(code=ErrorCode.INVALID_INPUT, message="asked to fail")
        yield "fine"

    @agents.agent()
    async def asker(input: list[Message], context: Context) -> AsyncIterator[Any]:
        """Awaits input (the tests cancel it)."""
        yield MessageAwaitRequest(message=Message(role="agent", parts=[MessagePart(content="more?")]))

    @agents.agent()
    async def sleeper(input: list[Message], context: Context) -> AsyncIterator[Any]:
        """Takes a while."""
        yield "a"
        await asyncio.sleep(0.35)
        yield "b"

    return agents


@pytest.fixture
def call(make_call: Callable[..., Call]) -> Call:
    return make_call(reporting_agents(), progress_log_interval=0.1)


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="acp_adapters")
    return caplog


async def manifest(call: Call, name: str) -> dict[str, Any]:
    status, body = await call.json("GET", f"/agents/{name}")
    assert status == 200, body
    assert_valid(body, "AgentManifest")
    return dict(body)


async def wait_until_ended(call: Call, run_id: str) -> dict[str, Any]:
    for _ in range(200):
        _, run = await call.json("GET", f"/runs/{run_id}")
        if run["status"] in ("completed", "failed", "cancelled"):
            return dict(run)
        await asyncio.sleep(0.02)
    raise AssertionError(f"run {run_id} did not end")


async def test_no_status_before_any_run(call: Call) -> None:
    assert "status" not in await manifest(call, "echo")
    _, listing = await call.json("GET", "/agents")
    assert all("status" not in agent for agent in listing["agents"])


async def test_status_counts_completed_and_failed_runs_and_leaves_cancelled_ones_out(call: Call) -> None:
    for text in ("ok", "fail", "ok", "ok"):
        status, run = await call.run("flaky", text)
        assert status == 200, run
    _, waiting = await call.run("asker", mode="async")
    await call.json("POST", f"/runs/{waiting['run_id']}/cancel")
    assert (await wait_until_ended(call, waiting["run_id"]))["status"] == "cancelled"

    flaky = (await manifest(call, "flaky"))["status"]
    assert flaky["success_rate"] == 75.0
    assert flaky["avg_run_tokens"] == 4.0
    assert 0 <= flaky["avg_run_time_seconds"] < 5
    # Cancelled runs make no figures: an agent with only those has no status yet.
    assert "status" not in await manifest(call, "asker")
    # GET /agents carries the same status.
    _, listing = await call.json("GET", "/agents")
    assert_valid(listing, "AgentsListResponse")
    by_name = {agent["name"]: agent for agent in listing["agents"]}
    assert by_name["flaky"]["status"] == flaky
    assert "status" not in by_name["echo"]


async def test_tokens_are_averaged_over_the_runs_that_counted_any(call: Call) -> None:
    await call.run("echo", "one")  # 10 tokens
    status, body = await call.json(
        "POST", "/runs", {"agent_name": "echo", "input": [{"parts": [{"content": "x"}]}] * 3}
    )
    assert status == 200, body  # 30 tokens
    echo = (await manifest(call, "echo"))["status"]
    assert (echo["avg_run_tokens"], echo["success_rate"]) == (20.0, 100.0)
    await call.run("quiet")
    quiet = (await manifest(call, "quiet"))["status"]
    assert "avg_run_tokens" not in quiet and quiet["success_rate"] == 100.0


async def test_average_run_time_is_measured_from_creation_to_end(call: Call) -> None:
    await call.run("sleeper")
    assert (await manifest(call, "sleeper"))["status"]["avg_run_time_seconds"] >= 0.35


async def test_status_is_kept_per_service(make_call: Callable[..., Call]) -> None:
    agents = reporting_agents()
    first, second = make_call(agents), make_call(agents)
    await first.run("echo")
    assert "status" in await manifest(first, "echo")
    assert "status" not in await manifest(second, "echo")


async def test_add_tokens_takes_whole_numbers_only(make_call: Callable[..., Call]) -> None:
    agents = AgentRegistry()

    @agents.agent()
    def counter(input: list[Message], context: Context) -> str:
        """Counts tokens, and some that are not."""
        assert context.tokens is None
        context.add_tokens(0)
        context.add_tokens(7)
        refused = []
        for bad in (-1, 1.5, True, "3"):
            try:
                context.add_tokens(bad)  # type: ignore[arg-type]
            except ValueError as exc:
                refused.append(str(exc))
        assert all("whole number of tokens" in text for text in refused), refused
        return f"{context.tokens} {len(refused)}"

    call = make_call(agents)
    status, run = await call.run("counter")
    assert status == 200 and run["output"][0]["parts"][0]["content"] == "7 4", run
    assert (await manifest(call, "counter"))["status"]["avg_run_tokens"] == 7.0


def finished(records: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The INFO lines of finished runs."""
    return [r for r in records.records if r.levelno == logging.INFO and hasattr(r, "events")]


async def test_one_info_line_per_finished_run_with_its_fields_and_no_content(
    call: Call, records: pytest.LogCaptureFixture
) -> None:
    status, run = await call.run("echo", SECRET, owner="alice")
    assert status == 200
    status, failed = await call.run("flaky", "fail", mode="async")
    await wait_until_ended(call, failed["run_id"])
    lines = finished(records)
    assert len(lines) == 2, [r.getMessage() for r in records.records]
    done, fail = lines
    assert done.name == "acp_adapters"
    fields = {name: getattr(done, name) for name in ("run_id", "agent_name", "owner", "mode", "status")}
    assert fields == {
        "run_id": run["run_id"],
        "agent_name": "echo",
        "owner": "alice",
        "mode": "sync",
        "status": "completed",
    }
    # run.created, run.in-progress, message.created, message.part, message.completed, run.completed
    assert done.events == 6  # type: ignore[attr-defined]
    assert done.tokens == 10 and done.error_code is None  # type: ignore[attr-defined]
    assert 0 <= done.duration_seconds < 5  # type: ignore[attr-defined]
    message = done.getMessage()
    assert run["run_id"] in message and "echo" in message and "completed" in message and "alice" in message
    assert (fail.status, fail.mode, fail.owner, fail.error_code) == (  # type: ignore[attr-defined]
        "failed",
        "async",
        None,
        "invalid_input",
    )
    assert "failed (invalid_input)" in fail.getMessage()
    for record in records.records:
        assert SECRET not in record.getMessage() and SECRET not in str(record.__dict__)


async def test_a_cancelled_run_is_logged_too(call: Call, records: pytest.LogCaptureFixture) -> None:
    _, run = await call.run("asker", mode="async")
    await call.json("POST", f"/runs/{run['run_id']}/cancel")
    await wait_until_ended(call, run["run_id"])
    (line,) = finished(records)
    assert (line.status, line.run_id) == ("cancelled", run["run_id"])  # type: ignore[attr-defined]


async def test_long_runs_get_progress_lines_at_debug(call: Call, records: pytest.LogCaptureFixture) -> None:
    _, run = await call.run("sleeper")
    progress = [r for r in records.records if r.levelno == logging.DEBUG and getattr(r, "run_id", None)]
    # 0.35 s of run, a line every 0.1 s: two to three, each saying what the run is doing.
    assert 2 <= len(progress) <= 4, [r.getMessage() for r in progress]
    assert all(r.run_id == run["run_id"] and r.status == "in-progress" for r in progress)  # type: ignore[attr-defined]
    assert "events so far" in progress[0].getMessage()
    await asyncio.sleep(0.25)  # the run has ended: no more lines
    later = [r for r in records.records if r.levelno == logging.DEBUG and getattr(r, "run_id", None)]
    assert len(later) == len(progress)


async def test_no_progress_timer_without_debug(call: Call, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="acp_adapters")
    await call.run("sleeper")
    assert not call.service.engine.reports._progress
    assert not [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(finished(caplog)) == 1
