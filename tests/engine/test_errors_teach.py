"""Errors that teach: an unknown agent's 404 names the close ones; in debug mode a failing agent's
error says why (never otherwise)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from acp_adapters import ACPService, AgentRegistry, Settings
from acp_adapters.core.errors import PermissionRequired
from acp_adapters.core.http import Request
from acp_adapters.models import Message
from tests.helpers import run_body

from .conftest import Call

pytestmark = pytest.mark.anyio


def registry(*names: str) -> AgentRegistry:
    agents = AgentRegistry()
    for name in names:
        agents.add(lambda input: "ok", name=name)
    return agents


async def test_an_unknown_agent_names_the_close_ones(make_call: Any) -> None:
    call = make_call(registry("echo", "slow-sync", "slow-async", "fail"))
    status, error = await call.json("GET", "/agents/slow_sync")
    assert status == 404 and error["code"] == "not_found"
    assert error["message"] == "agent slow_sync not found; did you mean slow-sync or slow-async?"
    assert error["data"] == {"agents": ["slow-sync", "slow-async", "echo", "fail"]}
    status, error = await call.run("ecoh")
    assert (status, error["message"]) == (404, "agent ecoh not found; did you mean echo?")
    status, error = await call.run("nothing-like-it")
    assert error["message"] == "agent nothing-like-it not found; GET /agents lists the agents"
    assert error["data"] == {"agents": ["echo", "slow-sync", "slow-async", "fail"]}


async def test_an_unknown_agent_with_an_idempotency_key_names_them_too(make_call: Any) -> None:
    call = make_call(registry("echo"))
    response = await call.service.handle(
        Request(
            "POST",
            "/runs",
            "http://test/acp",
            "",
            {"content-type": "application/json", "idempotency-key": "k1"},
            json.dumps(run_body("Echo")).encode(),
            None,
        )
    )
    assert response.status == 404
    assert b"did you mean echo?" in response.body


async def test_the_404_lists_at_most_20_agents_and_says_when_there_are_none(make_call: Any) -> None:
    call = make_call(registry(*(f"agent-{i}" for i in range(30))))
    _, error = await call.json("GET", "/agents/agent_7")
    assert error["message"].startswith("agent agent_7 not found; did you mean agent-7")
    assert len(error["data"]["agents"]) == 20 and error["data"]["agents"][0] == "agent-7"
    _, error = await make_call(AgentRegistry()).json("GET", "/agents/echo")
    assert error == {
        "code": "not_found",
        "message": "agent echo not found: this server has no agents",
        "data": {"agents": []},
    }


async def test_with_an_authorize_hook_only_visible_agents_are_named() -> None:
    def authorize(request: Request, agent: str | None) -> None:
        if agent is not None and agent.startswith("secret"):
            raise PermissionRequired()

    service = ACPService(registry("echo", "secret-echo", "secret-eco"), authorize=authorize)
    try:
        status, error = await Call(service).json("GET", "/agents/eco")
    finally:
        await service.aclose()
    assert status == 404
    assert error["message"] == "agent eco not found; did you mean echo?"
    assert error["data"] == {"agents": ["echo"]}


def failing_registry() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    async def fails(input: list[Message]) -> str:
        raise KeyError("the password is hunter2")

    @agents.agent()
    def fails_in_a_thread(input: list[Message]) -> str:
        nothing: dict[str, str] = {}
        return nothing["missing"]

    return agents


@pytest.mark.parametrize("mode", ["sync", "stream"])
async def test_debug_mode_says_why_an_agent_failed(make_call: Any, mode: str) -> None:
    call = make_call(failing_registry(), debug=True)
    if mode == "sync":
        _, run = await call.run("fails")
    else:
        run = (await call.stream("fails"))[-1]["run"]
    assert run["status"] == "failed"
    assert run["error"] == {
        "code": "server_error",
        "message": "the agent failed: KeyError: 'the password is hunter2'",
        "data": {"exception": "KeyError"},
    }
    _, run = await call.run("fails-in-a-thread")
    assert run["error"]["message"] == "the agent failed: KeyError: 'missing'"


async def test_without_debug_a_failing_agent_tells_nothing(make_call: Any) -> None:
    call = make_call(failing_registry())
    for agent in ("fails", "fails-in-a-thread"):
        _, run = await call.run(agent)
        assert run["error"] == {
            "code": "server_error",
            "message": "the agent failed with an unexpected error",
        }
    _, run = await call.json("GET", f"/runs/{run['run_id']}")
    assert "hunter2" not in str(run) and "KeyError" not in str(run)


def test_debug_is_off_unless_asked() -> None:
    assert Settings().debug is False
    assert Settings.from_env({"ACP_DEBUG": "1"}).debug is True


@pytest.mark.parametrize("debug", [False, True])
async def test_a_hook_that_breaks_gets_a_500_that_says_why_in_debug_only(debug: bool) -> None:
    def authorize(request: Request, agent: str | None) -> None:
        raise LookupError("no user table")

    service = ACPService(registry("echo"), authorize=authorize, settings=Settings(debug=debug))
    try:
        status, error = await Call(service).json("GET", "/agents")
    finally:
        await service.aclose()
    assert status == 500
    if debug:
        assert error == {
            "code": "server_error",
            "message": "internal server error: LookupError: no user table",
            "data": {"exception": "LookupError"},
        }
    else:
        assert error == {"code": "server_error", "message": "internal server error"}
