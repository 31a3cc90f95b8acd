"""Multi-worker safety: a server that runs several worker processes with the in-memory store gets a
warning at start-up that names the fix (a shared store); with a shared store, or one worker, none."""

from __future__ import annotations

import logging

import pytest

from acp_adapters import AgentRegistry
from acp_adapters.asgi import ACPApp
from acp_adapters.stores.redis import RedisStore
from acp_adapters.workers import server_worker_count
from tests.deployments.base import serve

UVICORN = "/venv/bin/uvicorn"
PYTHON_M_UVICORN = "/usr/lib/python3/site-packages/uvicorn/__main__.py"


@pytest.mark.parametrize(
    ("environ", "argv", "count"),
    [
        ({}, [UVICORN, "app:app", "--workers", "2"], 2),
        ({}, [PYTHON_M_UVICORN, "app:app", "--workers=3", "--port", "8000"], 3),
        ({"WEB_CONCURRENCY": "4"}, [UVICORN, "app:app"], 4),  # uvicorn's default for --workers
        ({}, [UVICORN, "app:app", "--reload", "--workers", "2"], 1),  # --reload runs one
        ({}, [UVICORN, "app:app"], None),
        ({}, ["/venv/bin/hypercorn", "app:app", "--workers", "2"], None),  # not uvicorn's option
    ],
)
def test_uvicorn_worker_count(environ: dict[str, str], argv: list[str], count: int | None) -> None:
    assert server_worker_count(environ, argv) == count


def test_an_asgi_app_with_the_memory_store_under_several_workers_warns(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "2")
    with caplog.at_level(logging.WARNING, logger="acp_adapters"):
        ACPApp(AgentRegistry())
        ACPApp(AgentRegistry(), store=RedisStore.from_url("redis://127.0.0.1:6379/0"))
    warnings = [r.getMessage() for r in caplog.records if "worker processes" in r.getMessage()]
    assert len(warnings) == 1
    assert "store=RedisStore.from_url(" in warnings[0] and "ACP_STORE=redis://" in warnings[0]


@pytest.mark.parametrize(("store", "warned"), [("", True), ("redis://127.0.0.1:6379/0", False)])
def test_uvicorn_workers_warn_at_start_up(store: str, warned: bool) -> None:
    command = ["{python}", "-m", "uvicorn", "example_starlette.app:app", "--workers", "2"]
    command += ["--host", "{host}", "--port", "{port}"]
    env = {"ACP_STORE": store, "WEB_CONCURRENCY": ""}
    with serve(command, env=env, name="uvicorn-workers") as target:
        assert target.client.request("GET", "/ping").status == 200
        assert target.server_log is not None
        log = target.server_log.read_text()
    assert ("the server runs 2 worker processes" in log) is warned, log
    if warned:
        assert "store=RedisStore.from_url('redis://127.0.0.1:6379/0')" in log
