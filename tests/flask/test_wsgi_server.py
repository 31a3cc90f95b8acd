"""What WSGI makes hard, under a real gunicorn (1 worker, gthread, 32 threads): dropped streams, many
simultaneous sync runs, runs that outlive their request, cancel and resume from other threads."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.deployments.base import Target, parse_sse
from tests.helpers import (
    TERMINAL,
    acp_error,
    create,
    get_run,
    ok_json,
    resume_body,
    run_body,
    run_sync,
    wait_for,
)

pytestmark = [pytest.mark.flask, pytest.mark.slow]


def probe(target: Target) -> dict[str, Any]:
    """The server's threads, live stream pumps and blocked sync agents (see tests/flask/app.py)."""
    response = httpx.get(target.base_url.rsplit("/acp", 1)[0] + "/probe", timeout=10)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def poll(check: Any, timeout: float = 10.0) -> Any:
    """Call ``check`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
    return result


def open_stream_and_drop(target: Target, agent: str, text: str) -> str:
    """Start a stream, read up to its first event, then close the connection; return the run id."""
    body = run_body(agent, text, mode="stream")
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", f"{target.base_url}/runs", json=body) as answer,
    ):
        assert answer.status_code == 200
        received = b""
        for chunk in answer.iter_raw():
            received += chunk
            if b"\n\n" in received:
                break
    return first_run_id(received)


def first_run_id(stream: bytes) -> str:
    """The run id in the first event (``run.created``) of a stream's beginning."""
    events, _ = parse_sse(stream.split(b"\n\n")[0] + b"\n\n")
    run_id: str = events[0].data["run"]["run_id"]
    return run_id


def test_a_dropped_stream_ends_its_subscription_not_its_run(gthread_server: Target) -> None:
    target = gthread_server
    # ticker runs 4 s (80 parts, 50 ms apart); 40 clients go away after the first event.
    run_ids = [open_stream_and_drop(target, "ticker", "80") for _ in range(40)]
    # gunicorn sees each client gone at its next write and closes the iterable: the pumps end
    # while the runs go on.
    poll(lambda: probe(target)["pumps"] == 0, timeout=3.0)
    assert get_run(target, run_ids[-1])["status"] == "in-progress"
    for run_id in run_ids:
        run = wait_for(target, run_id, TERMINAL, timeout=30)
        assert run["status"] == "completed", run
        assert len(run["output"][0]["parts"]) == 80, run
    # Threads did not pile up (gthread's 32, the engine's pool, the loop, main) ...
    assert probe(target)["threads"] <= 32 + 32 + 4
    # ... and all 32 request threads are free: 32 blocking requests run side by side.
    started = time.monotonic()
    with ThreadPoolExecutor(32) as pool:
        runs = list(pool.map(lambda _: run_sync(target, "sleeper"), range(32)))
    assert all(run["status"] == "completed" for run in runs)
    assert time.monotonic() - started < 5.0


def test_fifty_simultaneous_sync_runs_on_32_threads(gthread_server: Target) -> None:
    target = gthread_server
    started = time.monotonic()
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda i: create(target, run_body("sleeper", str(i))), range(50)))
    elapsed = time.monotonic() - started
    runs = [ok_json(result, 200, "Run") for result in results]
    assert [run["status"] for run in runs] == ["completed"] * 50
    assert len({run["run_id"] for run in runs}) == 50
    # Each run sleeps 0.5 s in a thread: one after the other would take 25 s.
    assert elapsed < 8.0, elapsed


def test_an_async_run_outlives_its_request(gthread_server: Target) -> None:
    target = gthread_server
    started = time.monotonic()
    run = ok_json(create(target, run_body("slow-echo", "a", "b", mode="async")), 202, "Run")
    assert time.monotonic() - started < 1.0
    assert run["status"] not in TERMINAL
    done = wait_for(target, run["run_id"], TERMINAL, timeout=15)
    assert done["status"] == "completed", done
    assert [m["parts"][0]["content"] for m in done["output"]] == ["a", "b"]


def test_cancel_from_another_thread_frees_the_agent_thread(gthread_server: Target) -> None:
    target = gthread_server
    streamed: dict[str, Any] = {}
    first_event = threading.Event()

    def stream() -> None:
        body = run_body("blocker", mode="stream")
        with (
            httpx.Client(timeout=30) as client,
            client.stream("POST", f"{target.base_url}/runs", json=body) as r,
        ):
            data = b""
            for chunk in r.iter_raw():
                data += chunk
                if not first_event.is_set() and b"\n\n" in data:
                    streamed["run_id"] = first_run_id(data)
                    first_event.set()
        streamed["events"] = [event.data["type"] for event in parse_sse(data)[0]]

    reader = threading.Thread(target=stream)
    reader.start()
    assert first_event.wait(10)
    run_id = streamed["run_id"]
    poll(lambda: probe(target)["blockers"] == 1)
    # The cancel arrives on another request thread than the one holding the run's stream.
    cancelling = ok_json(target.client.request("POST", f"/runs/{run_id}/cancel"), 202, "Run")
    assert cancelling["status"] in ("cancelling", "cancelled")
    reader.join(10)
    assert not reader.is_alive()
    assert streamed["events"][-1] == "run.cancelled", streamed
    assert wait_for(target, run_id, TERMINAL)["status"] == "cancelled"
    poll(lambda: probe(target)["blockers"] == 0)


def test_resume_from_other_threads_one_wins(gthread_server: Target) -> None:
    target = gthread_server
    result = create(target, run_body("awaiter", mode="stream"))
    assert [e.data["type"] for e in parse_sse(result.body)[0]][-1] == "run.awaiting"
    run_id = parse_sse(result.body)[0][0].data["run"]["run_id"]
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(
                lambda text: target.client.request("POST", f"/runs/{run_id}", json=resume_body(text)),
                ["one", "two", "three", "four"],
            )
        )
    winners = [answer for answer in answers if answer.status == 200]
    assert len(winners) == 1, answers
    for answer in answers:
        if answer.status != 200:
            acp_error(answer, 409, "invalid_input")
    run = winners[0].json()
    assert run["status"] == "completed", run
    assert run["output"][0]["parts"][0]["content"].startswith("received: ")
