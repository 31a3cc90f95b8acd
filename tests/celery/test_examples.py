"""The Flask example with ``ACP_EXECUTOR=celery`` (the contract suite covers the Starlette and Django
ones): both mounts hand their runs to one Celery worker, the guarded one with its owners."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.deployments.base import Target, gunicorn_command, require_service, serve
from tests.deployments.celery import celery_env, celery_workers
from tests.deployments.redis import store_url
from tests.stores.backends import REDIS_URL, delete_prefix, redis_address

pytestmark = [pytest.mark.celery, pytest.mark.redis, pytest.mark.flask, pytest.mark.slow]


@pytest.fixture(scope="module")
def flask_celery() -> Iterator[Target]:
    host, port = redis_address(REDIS_URL)
    require_service(host, port, f"Redis ({REDIS_URL})")
    prefix = f"acp-celery-flask-{uuid.uuid4().hex[:8]}:"
    env = celery_env(REDIS_URL, ACP_STORE=store_url(prefix), ACP_DEMO_TOKENS="alice=token-a")
    try:
        with (
            celery_workers(env, count=1, wait=False) as workers,
            serve(
                gunicorn_command("example_flask.app:app", workers=2), env=env, name="flask-celery"
            ) as target,
        ):
            workers.wait_all()
            yield target
    finally:
        with contextlib.suppress(Exception):
            delete_prefix(REDIS_URL, prefix)


def body(agent: str, text: str, mode: str = "sync", **extra: Any) -> dict[str, Any]:
    message = {"role": "user", "parts": [{"content": text, "content_type": "text/plain"}]}
    return {"agent_name": agent, "input": [message], "mode": mode, **extra}


def texts(run: dict[str, Any]) -> list[str]:
    return [part["content"] for message in run["output"] for part in message["parts"]]


def test_runs_of_both_mounts_execute_on_the_worker(flask_celery: Target) -> None:
    client = flask_celery.client
    run = client.request("POST", "/runs", json=body("sync-echo", "hi")).json()
    assert (run["status"], texts(run)) == ("completed", ["hi"])
    streamed = client.request("POST", "/runs", json=body("chunks", "5", mode="stream")).sse_events()
    assert [event.data["type"] for event in streamed][-1] == "run.completed"
    private = flask_celery.base_url.removesuffix("/acp") + "/acp-private"
    token = {"Authorization": "Bearer token-a"}
    answer = httpx.post(f"{private}/runs", json=body("whoami", "?"), headers=token, timeout=30)
    assert answer.status_code == 200, answer.text
    assert texts(answer.json()) == ["you are alice"]


def test_a_session_is_recorded_by_the_worker(flask_celery: Target) -> None:
    client = flask_celery.client
    session = str(uuid.uuid4())
    first = client.request("POST", "/runs", json=body("echo", "one", session_id=session)).json()
    assert first["status"] == "completed", first
    second = client.request("POST", "/runs", json=body("history-echo", "two", session_id=session)).json()
    assert texts(second) == ["one", "one", "two"], second
