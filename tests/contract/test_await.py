"""Await and resume (POST /runs/{run_id}), in every mode, as the official clients send it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.deployments.base import Target
from tests.helpers import (
    TERMINAL,
    acp_error,
    check_run_id_header,
    create,
    event_types,
    get_run,
    ok_json,
    output_texts,
    resume_body,
    run_body,
    run_events,
    run_sync,
    stream_events,
    wait_for,
)


def awaiting_run(target: Target) -> dict[str, Any]:
    run = run_sync(target, "awaiter", "start")
    assert run["status"] == "awaiting", run
    assert run["await_request"]["type"] == "message", run
    assert run["output"] == []
    assert "finished_at" not in run or run["finished_at"] is None, run
    return run


def resume(target: Target, run_id: str, text: str, mode: str = "sync") -> Any:
    return target.client.request("POST", f"/runs/{run_id}", json=resume_body(text, mode))


def check_received(run: dict[str, Any], text: str) -> None:
    assert run["status"] == "completed", run
    assert run.get("await_request") is None, run
    assert output_texts(run) == [f"received: {text}"]
    assert [m["role"] for m in run["output"]] == ["agent/awaiter"]
    assert run.get("finished_at"), run


def test_sync_run_stops_awaiting(target: Target) -> None:
    run = awaiting_run(target)
    assert get_run(target, run["run_id"]) == run
    assert event_types(run_events(target, run["run_id"])) == [
        "run.created",
        "run.in-progress",
        "run.awaiting",
    ]


def test_resume_in_sync_mode(target: Target) -> None:
    run = awaiting_run(target)
    result = resume(target, run["run_id"], "hi there")
    resumed = ok_json(result, 200, "Run")
    check_run_id_header(result, resumed)
    assert resumed["run_id"] == run["run_id"]
    check_received(resumed, "hi there")
    assert get_run(target, run["run_id"]) == resumed


def test_resume_in_async_mode(target: Target) -> None:
    run = awaiting_run(target)
    result = resume(target, run["run_id"], "later", mode="async")
    resumed = ok_json(result, 202, "Run")
    check_run_id_header(result, resumed)
    assert resumed["status"] in ("awaiting", "in-progress", "completed"), resumed
    check_received(wait_for(target, run["run_id"], TERMINAL), "later")


def test_resume_in_stream_mode(target: Target) -> None:
    run = awaiting_run(target)
    result = resume(target, run["run_id"], "streamed", mode="stream")
    # Event ids number the run's whole log: the resumed leg goes on after created, in-progress, awaiting.
    events = stream_events(result, first_id=3)
    types = event_types(events)
    assert types[0] == "run.in-progress", types
    assert types[-1] == "run.completed", types
    assert "message.part" in types
    check_run_id_header(result, events[-1]["run"])
    check_received(events[-1]["run"], "streamed")
    # The full log holds the first leg and the resumed one, once each, in order.
    log = run_events(target, run["run_id"])
    assert event_types(log)[:3] == ["run.created", "run.in-progress", "run.awaiting"]
    assert log[-len(events) :] == events


def test_create_in_stream_mode_closes_at_run_awaiting(target: Target) -> None:
    events = stream_events(create(target, run_body("awaiter", mode="stream")))
    assert event_types(events) == ["run.created", "run.in-progress", "run.awaiting"]
    run = events[-1]["run"]
    assert run["status"] == "awaiting"
    assert run["await_request"]["type"] == "message"
    check_received(ok_json(resume(target, run["run_id"], "ok"), 200, "Run"), "ok")


def test_resume_with_run_id_in_the_body_too(target: Target) -> None:
    run = awaiting_run(target)
    body = {**resume_body("with id"), "run_id": run["run_id"]}
    check_received(
        ok_json(target.client.request("POST", f"/runs/{run['run_id']}", json=body), 200, "Run"), "with id"
    )


def test_resume_with_a_different_run_id_in_the_body_is_rejected(target: Target) -> None:
    run = awaiting_run(target)
    body = {**resume_body("x"), "run_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a"}
    acp_error(target.client.request("POST", f"/runs/{run['run_id']}", json=body), 422, "invalid_input")
    assert get_run(target, run["run_id"])["status"] == "awaiting"


def test_second_resume_is_a_conflict(target: Target) -> None:
    run = awaiting_run(target)
    check_received(ok_json(resume(target, run["run_id"], "first"), 200, "Run"), "first")
    acp_error(resume(target, run["run_id"], "second"), 409, "invalid_input")
    check_received(get_run(target, run["run_id"]), "first")


@pytest.mark.parametrize("mode", ["sync", "async", "stream"])
@pytest.mark.parametrize("agent", ["echo", "failer"])
def test_resume_of_a_finished_run_is_a_conflict(target: Target, agent: str, mode: str) -> None:
    run = run_sync(target, agent)
    acp_error(resume(target, run["run_id"], "x", mode=mode), 409, "invalid_input")
    assert get_run(target, run["run_id"]) == run


def test_simultaneous_resumes_have_one_winner(target: Target) -> None:
    run = awaiting_run(target)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: resume(target, run["run_id"], f"resume {i}"), range(8)))
    winners = [i for i, r in enumerate(results) if r.status == 200]
    assert len(winners) == 1, [r.status for r in results]
    for i, result in enumerate(results):
        if i != winners[0]:
            acp_error(result, 409, "invalid_input")
    check_received(ok_json(results[winners[0]], 200, "Run"), f"resume {winners[0]}")
    check_received(get_run(target, run["run_id"]), f"resume {winners[0]}")


def test_resume_racing_cancel_ends_consistently(target: Target) -> None:
    run = awaiting_run(target)
    cancel_path = f"/runs/{run['run_id']}/cancel"
    with ThreadPoolExecutor(2) as pool:
        resumed = pool.submit(resume, target, run["run_id"], "race")
        cancelled = pool.submit(target.client.request, "POST", cancel_path)
        resume_result, cancel_result = resumed.result(), cancelled.result()
    final = wait_for(target, run["run_id"], TERMINAL)
    assert final["status"] in ("completed", "cancelled"), final
    if final["status"] == "completed":
        assert resume_result.status == 200, resume_result
        check_received(final, "race")
    else:
        assert cancel_result.status == 202, cancel_result
    if resume_result.status != 200:
        acp_error(resume_result, 409, "invalid_input")
        assert final["status"] == "cancelled"
    if cancel_result.status != 202:
        acp_error(cancel_result, 409, "invalid_input")
        assert final["status"] == "completed"


def test_resume_of_a_running_run_is_a_conflict(target: Target) -> None:
    run = ok_json(create(target, run_body("slow-echo", mode="async")), 202, "Run")
    acp_error(resume(target, run["run_id"], "x"), 409, "invalid_input")
    assert wait_for(target, run["run_id"], TERMINAL)["status"] == "completed"


def test_resume_of_an_unknown_run_is_404(target: Target) -> None:
    acp_error(resume(target, "3c90c3cc-0d44-4b50-8888-8dd25736052a", "x"), 404, "not_found")


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "sync"},
        {"await_resume": {"type": "message"}, "mode": "sync"},
        {"await_resume": {"type": "message", "message": {"role": "user", "parts": "x"}}},
        {"await_resume": {"type": "message", "message": {"role": "user", "parts": []}}, "mode": "later"},
    ],
)
def test_invalid_resume_body_is_422_and_the_run_still_awaits(target: Target, body: dict[str, Any]) -> None:
    run = awaiting_run(target)
    acp_error(target.client.request("POST", f"/runs/{run['run_id']}", json=body), 422, "invalid_input")
    assert get_run(target, run["run_id"])["status"] == "awaiting"
    check_received(ok_json(resume(target, run["run_id"], "after"), 200, "Run"), "after")
