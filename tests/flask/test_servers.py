"""The example under the other servers it must run on: the Flask dev server (threaded) and gunicorn's sync
worker; the multi-worker warning under gunicorn; a stop while runs and streams are open."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.deployments.base import REPO_ROOT, Target, free_port, log_tail, serve
from tests.flask.conftest import gunicorn
from tests.helpers import TERMINAL, create, ok_json, run_body, run_sync, stream_events, wait_for

pytestmark = [pytest.mark.flask, pytest.mark.slow]

APP = "tests.flask.app:app"

SERVERS = {
    "flask-run": ["{python}", "-m", "flask", "--app", "example_flask.app", "run", "--port", "{port}"],
    "gunicorn-sync": gunicorn("example_flask.app:app", "-w", "1", "-k", "sync"),
}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(request: pytest.FixtureRequest) -> Iterator[Target]:
    with serve(SERVERS[request.param], name=request.param) as target:
        yield target


def test_the_example_serves_its_own_page_and_the_api(server: Target) -> None:
    home = httpx.get(server.base_url.removesuffix("/acp") + "/", timeout=10)
    assert home.status_code == 200
    assert "ACP" in home.text
    assert run_sync(server, "sync-echo", "hi")["output"][0]["parts"][0]["content"] == "hi"
    assert run_sync(server, "gen-echo", "hi")["status"] == "completed"


def test_streams_and_async_runs(server: Target) -> None:
    events = stream_events(create(server, run_body("chunks", "300", mode="stream")))
    assert sum(1 for event in events if event["type"] == "message.part") == 300
    run = ok_json(create(server, run_body("slow-echo", "a", mode="async")), 202, "Run")
    assert wait_for(server, run["run_id"], TERMINAL, timeout=15)["status"] == "completed"


def test_a_chunked_body_over_the_limit_gets_413(server: Target) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"agent_name": "echo", "input": [], "x": "'
        for _ in range(80):
            yield b"x" * 65536  # 5 MiB in all, over the default 4 MiB
        yield b'"}'

    response = httpx.post(
        server.base_url + "/runs", content=body(), headers={"content-type": "application/json"}, timeout=30
    )
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "invalid_input"


def test_several_gunicorn_workers_with_the_memory_store_log_a_warning() -> None:
    with serve(gunicorn("example_flask.app:app", "-w", "2", "-k", "gthread"), name="gunicorn-2") as target:
        assert target.server_log is not None
        deadline = time.monotonic() + 10
        while log_tail(target.server_log).count("worker processes but the ACP store is in memory") < 2:
            assert time.monotonic() < deadline, log_tail(target.server_log)
            time.sleep(0.1)
        assert "2 worker processes" in log_tail(target.server_log)
    with serve(gunicorn("example_flask.app:app", "-w", "1", "-k", "gthread"), name="gunicorn-1") as target:
        assert target.server_log is not None
        run_sync(target, "echo")
        assert "store is in memory" not in log_tail(target.server_log)


def test_gunicorn_stops_promptly_with_runs_and_streams_open() -> None:
    port = free_port()
    options = ("-w", "1", "-k", "gthread", "--threads", "8")
    command = [
        part.format(python=sys.executable, host="127.0.0.1", port=port) for part in gunicorn(APP, *options)
    ]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}/acp"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/ping", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "gunicorn did not start"
            time.sleep(0.1)
        with httpx.Client(timeout=30) as client:
            background = client.post(base + "/runs", json=run_body("slow-echo", "a", "b", mode="async"))
            assert background.status_code == 202
            ticker = run_body("ticker", "1000", mode="stream")
            with client.stream("POST", base + "/runs", json=ticker) as stream:
                next(stream.iter_raw())
                started = time.monotonic()
                process.send_signal(signal.SIGTERM)
                process.wait(20)
        # gunicorn's graceful timeout (3 s) plus the bridge's bounded shutdown.
        assert time.monotonic() - started < 12
        assert process.returncode == 0, process.stdout.read().decode() if process.stdout else ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
