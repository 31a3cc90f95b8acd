"""POST /runs in async mode: 202 at once, then the run is polled to its end."""

from __future__ import annotations

import pytest

from tests.deployments.base import Target
from tests.helpers import (
    COMPLETING,
    FAILING,
    TERMINAL,
    acp_error,
    check_finished_run,
    check_run_id_header,
    create,
    ok_json,
    run_body,
    run_events,
    wait_for,
)


@pytest.mark.parametrize("agent", [a for a in (*COMPLETING, *FAILING) if a != "slow-echo"])
def test_each_demo_agent_in_async_mode(target: Target, agent: str) -> None:
    result = create(target, run_body(agent, "Hello", mode="async"))
    run = ok_json(result, 202, "Run")
    check_run_id_header(result, run)
    assert run["status"] == "created", run
    assert run["agent_name"] == agent
    assert run["output"] == []
    finished = wait_for(target, run["run_id"], TERMINAL)
    check_finished_run(agent, "Hello", finished)
    assert finished["created_at"] == run["created_at"]
    assert finished["session_id"] == run["session_id"]


def test_async_run_is_answered_before_it_finishes(target: Target) -> None:
    result = create(target, run_body("slow-echo", "a", "b", mode="async"))
    run = ok_json(result, 202, "Run")
    assert run["status"] == "created", run
    # slow-echo takes two seconds: it is still going right after the answer.
    assert wait_for(target, run["run_id"], ["created", "in-progress"])["status"] in ("created", "in-progress")
    finished = wait_for(target, run["run_id"], TERMINAL)
    assert finished["status"] == "completed", finished
    assert [m["parts"][0]["content"] for m in finished["output"]] == ["a", "b"]


def test_events_of_a_run_in_progress_answer_at_once(target: Target) -> None:
    run = ok_json(create(target, run_body("slow-echo", "a", "b", "c", mode="async")), 202, "Run")
    # Three seconds of work: the events so far, not a wait for the end.
    events = run_events(target, run["run_id"])
    types = [e["type"] for e in events]
    assert types[:1] in ([], ["run.created"]), types
    assert "run.completed" not in types
    assert wait_for(target, run["run_id"], TERMINAL)["status"] == "completed"
    assert run_events(target, run["run_id"])[-1]["type"] == "run.completed"


def test_unknown_run_is_404(target: Target) -> None:
    acp_error(target.client.request("GET", "/runs/3c90c3cc-0d44-4b50-8888-8dd25736052a"), 404, "not_found")
