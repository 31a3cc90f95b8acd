"""POST /runs in stream mode: the event stream, its framing, and GET /runs/{id}/events."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deployments.base import Target
from tests.helpers import (
    COMPLETING,
    FAILING,
    acp_error,
    check_finished_run,
    check_run_id_header,
    create,
    event_types,
    get_run,
    normal_part,
    ok_json,
    output_parts,
    run_body,
    run_events,
    stream_events,
)


def message_events_match_output(events: list[dict[str, Any]], run: dict[str, Any]) -> None:
    """The message events rebuild the run's output: created, its parts in order, completed."""
    messages: list[list[dict[str, Any]]] = []
    completed: list[dict[str, Any]] = []
    open_message = False
    for event in events:
        if event["type"] == "message.created":
            assert not open_message, event_types(events)
            open_message = True
            messages.append([])
        elif event["type"] == "message.part":
            assert open_message, event_types(events)
            messages[-1].append(normal_part(event["part"]))
        elif event["type"] == "message.completed":
            assert open_message, event_types(events)
            open_message = False
            completed.append(event["message"])
    assert not open_message, event_types(events)
    assert messages == output_parts(run)
    assert [[normal_part(p) for p in m["parts"]] for m in completed] == output_parts(run)
    assert [m["role"] for m in completed] == [m["role"] for m in run["output"]]


@pytest.mark.parametrize("agent", [a for a in COMPLETING if a != "slow-echo"])
def test_each_completing_agent_streams_its_run(target: Target, agent: str) -> None:
    result = create(target, run_body(agent, "Hello", mode="stream"))
    events = stream_events(result)
    types = event_types(events)
    assert types[:2] == ["run.created", "run.in-progress"], types
    assert types[-1] == "run.completed", types
    run = events[-1]["run"]
    check_run_id_header(result, run)
    check_finished_run(agent, "Hello", run)
    assert all(e["run"]["run_id"] == run["run_id"] for e in events if "run" in e)
    assert events[0]["run"]["status"] == "created"
    assert events[1]["run"]["status"] == "in-progress"
    message_events_match_output(events, run)
    assert get_run(target, run["run_id"]) == run


def test_echo_stream_event_order(target: Target) -> None:
    events = stream_events(create(target, run_body("echo", "Hello", mode="stream")))
    assert event_types(events) == [
        "run.created",
        "run.in-progress",
        "message.created",
        "message.part",
        "message.completed",
        "run.completed",
    ]


def test_parts_yielded_one_by_one_form_one_message(target: Target) -> None:
    events = stream_events(create(target, run_body("mime-types", mode="stream")))
    types = event_types(events)
    assert types == ["run.created", "run.in-progress", "message.created"] + ["message.part"] * 4 + [
        "message.completed",
        "run.completed",
    ]


@pytest.mark.parametrize("agent", list(FAILING))
def test_failing_agent_stream_ends_with_run_failed(target: Target, agent: str) -> None:
    events = stream_events(create(target, run_body(agent, mode="stream")))
    assert event_types(events) == ["run.created", "run.in-progress", "run.failed"]
    check_finished_run(agent, "Hello", events[-1]["run"])


@pytest.mark.parametrize(
    "text",
    [
        "line\nbreaks\r\nof\revery kind",
        "data: id: 7\n\nevent: x",
        "é 🌍 \u2028 \u2029 \x85 \t",
        ": comment",
    ],
)
def test_stream_framing_keeps_any_text_intact(target: Target, text: str) -> None:
    events = stream_events(create(target, run_body("echo", text, mode="stream")))
    parts = [e["part"]["content"] for e in events if e["type"] == "message.part"]
    assert parts == [text]
    check_finished_run("echo", text, events[-1]["run"])
    check_finished_run("echo", text, get_run(target, events[-1]["run"]["run_id"]))


@pytest.mark.parametrize("mode", ["sync", "stream"])
def test_text_with_nul_survives_a_run(target: Target, mode: str) -> None:
    text = "before\x00after"
    result = create(target, run_body("echo", text, mode=mode))
    run = stream_events(result)[-1]["run"] if mode == "stream" else ok_json(result, 200, "Run")
    check_finished_run("echo", text, run)
    check_finished_run("echo", text, get_run(target, run["run_id"]))


def test_stream_of_many_parts(target: Target) -> None:
    events = stream_events(create(target, run_body("chunks", "2000", mode="stream")))
    parts = [e["part"]["content"] for e in events if e["type"] == "message.part"]
    assert parts == [f"{i} " for i in range(2000)]


def test_events_of_a_run_are_the_streamed_events(target: Target) -> None:
    events = stream_events(create(target, run_body("artifact-producer", mode="stream")))
    assert run_events(target, events[-1]["run"]["run_id"]) == events


def test_events_of_a_sync_run_are_kept_in_order(target: Target) -> None:
    run = ok_json(create(target, run_body("echo", "a", "b")), 200, "Run")
    events = run_events(target, run["run_id"])
    assert event_types(events) == [
        "run.created",
        "run.in-progress",
        *["message.created", "message.part", "message.completed"] * 2,
        "run.completed",
    ]
    assert events[-1]["run"] == run


def test_events_of_an_unknown_run_are_404(target: Target) -> None:
    result = target.client.request("GET", "/runs/3c90c3cc-0d44-4b50-8888-8dd25736052a/events")
    acp_error(result, 404, "not_found")
