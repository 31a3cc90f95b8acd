"""Bad requests: each gets an ACP error JSON with a 4xx status, never a 5xx, a hang or a traceback."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.deployments.base import HttpResult, Target
from tests.helpers import JSON, acp_error, create, message, ok_json, run_body


def no_traceback(result: HttpResult) -> None:
    text = result.body.decode(errors="replace")
    assert "Traceback" not in text, text
    assert 'File "' not in text, text


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"{", b"", b"\xff\xfe\x00", b'{"agent_name": "echo", "input": [}', b"\x00" * 10],
)
def test_body_that_is_not_json(target: Target, raw: bytes) -> None:
    result = target.client.request("POST", "/runs", content=raw, headers=JSON)
    acp_error(result, 422, "invalid_input")
    no_traceback(result)


@pytest.mark.parametrize("body", [[], None, 42, "echo", True, [{"agent_name": "echo"}]])
def test_body_that_is_json_but_not_an_object(target: Target, body: Any) -> None:
    result = target.client.request("POST", "/runs", content=json.dumps(body).encode(), headers=JSON)
    acp_error(result, 422, "invalid_input")


def field_error(target: Target, body: Any, field: str) -> None:
    result = create(target, body)
    error = acp_error(result, 422, "invalid_input")
    assert isinstance(error.get("data"), dict), error
    assert field in json.dumps(error["data"]), f"{field!r} not named in {error}"
    no_traceback(result)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": [message("x")]}, "agent_name"),
        ({"agent_name": "echo"}, "input"),
        ({"agent_name": "echo", "input": []}, "input"),
        ({"agent_name": "echo", "input": "hello"}, "input"),
        ({"agent_name": "echo", "input": [{"role": "user"}]}, "parts"),
        ({"agent_name": "echo", "input": [{"role": "user", "parts": "x"}]}, "parts"),
        ({"agent_name": "echo", "input": [{"role": "robot", "parts": [{"content": "x"}]}]}, "role"),
        ({"agent_name": "echo", "input": [{"role": "agent/a b", "parts": [{"content": "x"}]}]}, "role"),
        ({"agent_name": 42, "input": [message("x")]}, "agent_name"),
        ({**run_body("echo"), "mode": "later"}, "mode"),
        ({**run_body("echo"), "session_id": "nope"}, "session_id"),
        ({**run_body("echo"), "session": {"history": []}}, "session"),
        (
            {"agent_name": "echo", "input": [{"parts": [{"content": "x", "content_url": "http://a.org/b"}]}]},
            "parts",
        ),
        (
            {"agent_name": "echo", "input": [{"parts": [{"content": "x", "content_encoding": "rot13"}]}]},
            "parts",
        ),
        (
            {"agent_name": "echo", "input": [{"parts": [{"content": "x", "metadata": {"kind": "x"}}]}]},
            "metadata",
        ),
        (
            {"agent_name": "echo", "input": [{"parts": [{"content": "x"}], "created_at": "yesterday"}]},
            "created_at",
        ),
    ],
)
def test_schema_failures_name_the_field(target: Target, body: Any, field: str) -> None:
    field_error(target, body, field)


def test_unknown_agent_run_is_404(target: Target) -> None:
    acp_error(create(target, run_body("nobody")), 404, "not_found")


@pytest.mark.parametrize("mode", ["async", "stream"])
def test_unknown_agent_in_other_modes_is_404_before_any_stream(target: Target, mode: str) -> None:
    acp_error(create(target, run_body("nobody", mode=mode)), 404, "not_found")


@pytest.mark.parametrize("mode", ["sync", "async", "stream"])
def test_invalid_body_in_any_mode_is_422_not_a_stream(target: Target, mode: str) -> None:
    acp_error(create(target, {"agent_name": "echo", "input": [], "mode": mode}), 422, "invalid_input")


@pytest.mark.parametrize("path", ["/runs/not-a-uuid", "/runs/123", "/runs/not-a-uuid/events", "/sessions/x"])
def test_bad_uuid_in_path(target: Target, path: str) -> None:
    acp_error(target.client.request("GET", path), 422, "invalid_input")


def test_bad_uuid_in_resume_path(target: Target) -> None:
    body = {"await_resume": {"type": "message", "message": message("x")}, "mode": "sync"}
    acp_error(target.client.request("POST", "/runs/not-a-uuid", json=body), 422, "invalid_input")


@pytest.mark.parametrize("path", ["/", "/nothing", "/agents/echo/extra", "/runs/x/y/z", "/pingx"])
def test_unknown_path_is_404(target: Target, path: str) -> None:
    acp_error(target.client.request("GET", path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/runs"),
        ("GET", "/runs"),
        ("PUT", "/agents"),
        ("POST", "/agents/echo"),
        ("POST", "/ping"),
        ("PATCH", "/runs/3c90c3cc-0d44-4b50-8888-8dd25736052a"),
        ("GET", "/runs/3c90c3cc-0d44-4b50-8888-8dd25736052a/cancel"),
        ("POST", "/sessions/3c90c3cc-0d44-4b50-8888-8dd25736052a"),
    ],
)
def test_wrong_method_is_405(target: Target, method: str, path: str) -> None:
    acp_error(target.client.request(method, path), 405, "invalid_input")


def test_body_over_the_limit_is_413(target: Target) -> None:
    # The examples keep the default limit of 4 MiB.
    big = "x" * (4 * 1024 * 1024 + 1024)
    result = create(target, run_body("echo", big))
    acp_error(result, 413, "invalid_input")


def test_body_just_under_the_limit_is_served(target: Target) -> None:
    text = "y" * (4 * 1024 * 1024 - 1024)
    result = create(target, run_body("echo", text))
    assert result.status == 200, result.status
    assert result.json()["output"][0]["parts"][0]["content"] == text


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_non_standard_numbers_never_come_back_as_invalid_json(target: Target, constant: bytes) -> None:
    # Python's json accepts NaN and Infinity; no client parses them back. Reject them, or answer valid JSON.
    metadata = b'{"kind": "trajectory", "tool_input": {"a": ' + constant + b"}}"
    body = b'{"agent_name": "echo", "input": [{"parts": [{"content": "x", "metadata": ' + metadata + b"}]}]}"
    result = target.client.request("POST", "/runs", content=body, headers=JSON)
    if result.status == 200:
        ok_json(result, 200, "Run")
    else:
        acp_error(result, 422, "invalid_input")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"agent_name": "echo", "input": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"agent_name": "echo", "input": [{"parts": [{"content": "x", "metadata": {"kind": "trajectory", '
        b'"tool_input": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}}]}]}",
        b'{"agent_name": "echo", "input": [{"parts": [{"content": "\xff"}]}]}',
        b'{"agent_name": "echo", "input": [{"parts": [{"content": "\\ud800"}]}]}',
    ],
    ids=["deep-nesting", "deep-metadata", "invalid-utf8", "lone-surrogate"],
)
def test_hostile_json_is_a_4xx(target: Target, raw: bytes) -> None:
    result = target.client.request("POST", "/runs", content=raw, headers=JSON)
    assert result.status < 500, result
    if result.status == 200:
        ok_json(result, 200, "Run")
    else:
        acp_error(result, 422)


def test_unknown_fields_are_tolerated(target: Target) -> None:
    body = {**run_body("echo", "x"), "extra": 1}
    body["input"][0]["parts"][0]["x-custom"] = "kept or dropped"
    result = create(target, body)
    assert result.status == 200, result


def test_content_type_header_is_not_required(target: Target) -> None:
    # acp-sdk posts its JSON with httpx's ``content=``: no Content-Type header at all.
    result = target.client.request("POST", "/runs", content=json.dumps(run_body("echo", "x")).encode())
    assert result.status == 200, result
