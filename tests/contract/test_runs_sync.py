"""POST /runs in sync mode: every demo agent's exact output."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.deployments.base import Target
from tests.helpers import (
    COMPLETING,
    FAILING,
    check_finished_run,
    create,
    get_run,
    message,
    ok_json,
    output_parts,
    output_texts,
    part,
    run_body,
    run_sync,
)


@pytest.mark.parametrize("agent", [*COMPLETING, *FAILING])
def test_each_demo_agent_in_sync_mode(target: Target, agent: str) -> None:
    run = run_sync(target, agent, "Hello")
    check_finished_run(agent, "Hello", run)
    # The run is kept: reading it back gives the same run.
    assert get_run(target, run["run_id"]) == run


def test_a_run_always_has_a_session(target: Target) -> None:
    run = run_sync(target, "sessioner")
    uuid.UUID(run["session_id"])
    assert output_texts(run) == [run["session_id"]]


@pytest.mark.parametrize("agent", ["echo", "sync-echo", "gen-echo"])
def test_echoes_every_input_message_as_its_own_message(target: Target, agent: str) -> None:
    run = run_sync(target, agent, "one", "two", "three")
    assert output_texts(run) == ["one", "two", "three"]
    assert [m["role"] for m in run["output"]] == [f"agent/{agent}"] * 3


def test_echo_keeps_every_part_field(target: Target) -> None:
    parts: list[dict[str, Any]] = [
        {"content_type": "text/plain", "content": "a"},
        {"content_type": "application/json", "content": '{"a": 1}', "name": "a.json"},
        {"content_type": "image/png", "content": "iVBORw0KGgo=", "content_encoding": "base64"},
        {"content_type": "text/html", "content_url": "https://example.org/page.html"},
        {
            "content_type": "text/plain",
            "content": "cited",
            "metadata": {"kind": "citation", "url": "https://x.org"},
        },
    ]
    result = create(target, {"agent_name": "echo", "input": [{"role": "user", "parts": parts}]})
    run = ok_json(result, 200, "Run")
    assert output_parts(run) == [[part(**p) if "content" in p else part(None, **p) for p in parts]]


def test_chunks_yields_n_parts_in_one_message(target: Target) -> None:
    run = run_sync(target, "chunks", "25")
    check_finished_run("chunks", "25", run)
    assert len(run["output"][0]["parts"]) == 25


def test_request_with_nulls_and_timestamps_as_the_python_client_sends(target: Target) -> None:
    # acp-sdk serialises every optional field, with null where unset.
    body = {
        "agent_name": "echo",
        "session_id": None,
        "session": None,
        "input": [
            {
                "role": "user",
                "parts": [
                    {
                        "name": None,
                        "content_type": "text/plain",
                        "content": "hi",
                        "content_encoding": "plain",
                        "content_url": None,
                        "metadata": None,
                    }
                ],
                "created_at": "2025-06-01T12:00:00.123456Z",
                "completed_at": "2025-06-01T12:00:00+00:00",
            }
        ],
        "mode": "sync",
    }
    run = ok_json(create(target, body), 200, "Run")
    assert output_texts(run) == ["hi"]


def test_mode_defaults_to_sync(target: Target) -> None:
    body = run_body("echo", "x")
    del body["mode"]
    run = ok_json(create(target, body), 200, "Run")
    assert run["status"] == "completed"
    assert output_texts(run) == ["x"]


def test_agent_role_input_is_accepted(target: Target) -> None:
    body = {"agent_name": "echo", "input": [message("from another agent", role="agent/other")]}
    run = ok_json(create(target, body), 200, "Run")
    assert output_texts(run) == ["from another agent"]
    assert run["output"][0]["role"] == "agent/echo"


def test_tool_trajectory_sees_all_input_text(target: Target) -> None:
    run = run_sync(target, "tool-trajectory", "abc", "def")
    assert run["output"][0]["parts"][0]["metadata"]["tool_input"] == {"q": "abcdef"}
