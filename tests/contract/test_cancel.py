"""POST /runs/{run_id}/cancel."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deployments.base import Target
from tests.helpers import (
    TERMINAL,
    acp_error,
    create,
    event_types,
    get_run,
    ok_json,
    run_body,
    run_events,
    run_sync,
    wait_for,
)


def cancel(target: Target, run_id: str) -> Any:
    return target.client.request("POST", f"/runs/{run_id}/cancel")


def check_cancelled(target: Target, run_id: str) -> dict[str, Any]:
    run = wait_for(target, run_id, TERMINAL, timeout=10)
    assert run["status"] == "cancelled", run
    assert run.get("finished_at"), run
    assert run.get("await_request") is None, run
    assert event_types(run_events(target, run_id))[-1] == "run.cancelled"
    return run


def test_cancel_a_running_run(target: Target) -> None:
    run = ok_json(create(target, run_body("slow-echo", "a", "b", "c", mode="async")), 202, "Run")
    wait_for(target, run["run_id"], ["in-progress"])
    cancelling = ok_json(cancel(target, run["run_id"]), 202, "Run")
    assert cancelling["run_id"] == run["run_id"]
    assert cancelling["status"] in ("cancelling", "cancelled"), cancelling
    cancelled = check_cancelled(target, run["run_id"])
    # slow-echo needs three seconds for three messages: it was stopped before the end.
    assert len(cancelled["output"]) < 3, cancelled


def test_cancel_right_after_create(target: Target) -> None:
    run = ok_json(create(target, run_body("slow-echo", mode="async")), 202, "Run")
    cancelling = ok_json(cancel(target, run["run_id"]), 202, "Run")
    assert cancelling["status"] in ("cancelling", "cancelled"), cancelling
    assert check_cancelled(target, run["run_id"])["output"] == []


def test_cancel_an_awaiting_run(target: Target) -> None:
    run = run_sync(target, "awaiter")
    assert run["status"] == "awaiting", run
    cancelling = ok_json(cancel(target, run["run_id"]), 202, "Run")
    assert cancelling["status"] in ("cancelling", "cancelled"), cancelling
    check_cancelled(target, run["run_id"])
    body = {"await_resume": {"type": "message", "message": {"role": "user", "parts": [{"content": "x"}]}}}
    acp_error(target.client.request("POST", f"/runs/{run['run_id']}", json=body), 409, "invalid_input")


@pytest.mark.parametrize("agent", ["echo", "failer"])
def test_cancel_a_finished_run_is_a_conflict(target: Target, agent: str) -> None:
    run = run_sync(target, agent)
    acp_error(cancel(target, run["run_id"]), 409, "invalid_input")
    assert get_run(target, run["run_id"]) == run


def test_cancel_is_idempotent_once_cancelled(target: Target) -> None:
    # A client that retries its cancel gets the cancelled run again, not an error.
    run = ok_json(create(target, run_body("slow-echo", mode="async")), 202, "Run")
    ok_json(cancel(target, run["run_id"]), 202, "Run")
    cancelled = check_cancelled(target, run["run_id"])
    assert ok_json(cancel(target, run["run_id"]), 202, "Run") == cancelled


def test_cancel_an_unknown_run_is_404(target: Target) -> None:
    acp_error(cancel(target, "3c90c3cc-0d44-4b50-8888-8dd25736052a"), 404, "not_found")


def test_cancel_with_a_bad_run_id_is_422(target: Target) -> None:
    acp_error(cancel(target, "not-a-uuid"), 422, "invalid_input")
