"""Request hygiene, the same in every deployment: POST bodies declared as JSON, ids in paths parsed before
they reach a header, and Idempotency-Key on POST /runs."""

from __future__ import annotations

import uuid

import pytest

from tests.deployments.base import Target
from tests.helpers import JSON, acp_error, check_run_id_header, ok_json, run_body, stream_events


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_declared_as_another_type_is_a_415(target: Target, content_type: str) -> None:
    body = b'{"agent_name": "echo", "input": [{"parts": [{"content": "hi"}]}]}'
    result = target.client.request("POST", "/runs", content=body, headers={"content-type": content_type})
    error = acp_error(result, 415, "invalid_input")
    assert error["data"] == {"content_type": content_type}, error


def test_a_cross_site_body_without_a_type_is_a_415(target: Target) -> None:
    body = b'{"agent_name": "echo", "input": [{"parts": [{"content": "hi"}]}]}'
    result = target.client.request("POST", "/runs", content=body, headers={"sec-fetch-site": "cross-site"})
    acp_error(result, 415, "invalid_input")


def test_json_with_a_charset_is_accepted(target: Target) -> None:
    result = target.client.request(
        "POST", "/runs", json=run_body("echo"), headers={"content-type": "application/json; charset=utf-8"}
    )
    ok_json(result, 200, "Run")


@pytest.mark.parametrize("prefix", ["%20", "%09", "%0d"])
@pytest.mark.parametrize("route", ["/runs/{}", "/runs/{}/events", "/sessions/{}", "/resources/{}"])
def test_a_path_id_with_whitespace_is_a_422(target: Target, prefix: str, route: str) -> None:
    result = target.client.request("GET", route.format(prefix + str(uuid.uuid4())))
    error = acp_error(result, 422, "invalid_input")
    assert not any(ch in error["message"] for ch in "\r\n\t"), error
    assert "run-id" not in result.headers


def test_the_run_id_header_is_canonical(target: Target) -> None:
    run = ok_json(target.client.request("POST", "/runs", json=run_body("echo", mode="async")), 202, "Run")
    result = target.client.request("GET", f"/runs/{run['run_id'].upper()}")
    check_run_id_header(result, ok_json(result, 200, "Run"))


def test_an_idempotency_key_makes_one_run(target: Target) -> None:
    key = {**JSON, "idempotency-key": f"contract-{uuid.uuid4()}"}
    body = run_body("echo", "once", mode="async")
    first = target.client.request("POST", "/runs", json=body, headers=key)
    again = target.client.request("POST", "/runs", json=body, headers=key)
    run, replayed = ok_json(first, 202, "Run"), ok_json(again, 202, "Run")
    assert replayed["run_id"] == run["run_id"]
    check_run_id_header(again, run)
    other = target.client.request("POST", "/runs", json=run_body("echo", "twice", mode="async"), headers=key)
    error = acp_error(other, 409, "invalid_input")
    assert key["idempotency-key"] in error["message"], error


def test_an_idempotency_key_replays_sync_and_stream_runs(target: Target) -> None:
    key = {**JSON, "idempotency-key": f"contract-{uuid.uuid4()}"}
    body = run_body("echo", "sync once")
    runs = [ok_json(target.client.request("POST", "/runs", json=body, headers=key), 200, "Run") for _ in "ab"]
    assert runs[0] == runs[1] and runs[0]["status"] == "completed"
    key = {**JSON, "idempotency-key": f"contract-{uuid.uuid4()}"}
    body = run_body("echo", "streamed", mode="stream")
    streams = [stream_events(target.client.request("POST", "/runs", json=body, headers=key)) for _ in "ab"]
    assert streams[0] == streams[1] and streams[0][-1]["type"] == "run.completed"


def test_a_malformed_idempotency_key_is_a_422(target: Target) -> None:
    result = target.client.request(
        "POST", "/runs", json=run_body("echo"), headers={**JSON, "idempotency-key": "a b"}
    )
    acp_error(result, 422, "invalid_input")
