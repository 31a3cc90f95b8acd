"""What real clients do on a real socket that a test client cannot show: chunked bodies, keep-alive,
clients that go away mid-stream. Runs against every deployment with a real server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx

from tests.deployments.base import TLS, HttpResult, Target, parse_sse
from tests.helpers import TERMINAL, acp_error, check_event, output_texts, run_body, wait_for


def chunks_of(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def post_chunked(target: Target, body: bytes) -> HttpResult:
    # An iterator body is sent with Transfer-Encoding: chunked and no Content-Length.
    with httpx.Client(verify=TLS, timeout=60) as client:
        response = client.post(target.base_url + "/runs", content=chunks_of(body))
        headers = {name.lower(): value for name, value in response.headers.items()}
        return HttpResult(status=response.status_code, headers=headers, body=response.read())


def test_chunked_request_body(target: Target) -> None:
    result = post_chunked(target, json.dumps(run_body("echo", "chunked " * 1000)).encode())
    assert result.status == 200, result
    assert output_texts(result.json()) == ["chunked " * 1000]


def test_chunked_request_body_over_the_limit_is_413(target: Target) -> None:
    result = post_chunked(target, json.dumps(run_body("echo", "x" * (4 * 1024 * 1024 + 1024))).encode())
    acp_error(result, 413, "invalid_input")
    assert target.client.request("GET", "/ping").status == 200


def test_keep_alive_connection_serves_requests_after_a_stream(target: Target) -> None:
    with httpx.Client(base_url=target.base_url, timeout=30, verify=TLS) as client:
        for i in range(3):
            streamed = client.post("/runs", json=run_body("chunks", "20", mode="stream"))
            events, _ = parse_sse(streamed.content)
            assert events[-1].data["type"] == "run.completed"
            answer = client.post("/runs", json=run_body("echo", f"after stream {i}"))
            assert answer.status_code == 200
            assert output_texts(answer.json()) == [f"after stream {i}"]


def test_run_goes_on_when_the_stream_client_goes_away(target: Target) -> None:
    with httpx.Client(verify=TLS, timeout=30) as client:
        request = client.build_request(
            "POST", target.base_url + "/runs", json=run_body("slow-echo", "a", "b", mode="stream")
        )
        response = client.send(request, stream=True)
        try:
            assert response.status_code == 200
            first = b""
            for chunk in response.iter_bytes():
                first += chunk
                if b"\n\n" in first:
                    break
        finally:
            response.close()
    created = parse_sse(first.split(b"\n\n")[0] + b"\n\n")[0][0].data
    check_event(created)
    assert created["type"] == "run.created"
    run = wait_for(target, created["run"]["run_id"], TERMINAL)
    assert run["status"] == "completed", run
    assert output_texts(run) == ["a", "b"]


def test_many_clients_going_away_leave_the_server_healthy(target: Target) -> None:
    run_ids = []
    for i in range(10):
        with httpx.Client(verify=TLS, timeout=30) as client:
            body = (
                run_body("slow-echo", "a", "b", mode="stream")
                if i % 2
                else run_body("chunks", "300", mode="stream")
            )
            with client.stream("POST", target.base_url + "/runs", json=body) as response:
                head = next(response.iter_bytes())
                run_ids.append(parse_sse(head.split(b"\n\n")[0] + b"\n\n")[0][0].data["run"]["run_id"])
    for run_id in run_ids:
        assert wait_for(target, run_id, TERMINAL, timeout=60)["status"] == "completed"
    started = time.monotonic()
    assert target.client.request("GET", "/ping").status == 200
    assert time.monotonic() - started < 5
