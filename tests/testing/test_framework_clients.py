"""Every framework's own test client, with the ways users hold it: async runs complete, resume and
cancel answer, streams end. Each step is bounded (a regression fails, it does not hang)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client
from fastapi import FastAPI
from fastapi.testclient import TestClient as FastAPITestClient
from flask import Flask
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from acp_adapters.asgi import ACPApp, ACPMiddleware
from acp_adapters.bridge import loop_outlives_request
from acp_adapters.flask import ACP
from example_agents import demo_registry
from tests.deployments.django import example_sites

from .conftest import LIMIT, within

Get = Callable[[str], dict[str, Any]]
Post = Callable[[str, dict[str, Any]], dict[str, Any]]


def _input(text: str) -> list[dict[str, Any]]:
    return [{"parts": [{"content": text}]}]


def exercise(get: Get, post: Post, mount: str = "/acp") -> None:
    """What a user's test does: sync, await and resume, async run to its end, cancel."""
    run = within(LIMIT, lambda: post(f"{mount}/runs", {"agent_name": "echo", "input": _input("hi")}))
    assert run["status"] == "completed"
    assert run["output"][0]["parts"][0]["content"] == "hi"

    asked = within(LIMIT, lambda: post(f"{mount}/runs", {"agent_name": "awaiter", "input": _input("q")}))
    assert asked["status"] == "awaiting"
    resume = {"await_resume": {"message": {"parts": [{"content": "yes"}]}}}
    resumed = within(LIMIT, lambda: post(f"{mount}/runs/{asked['run_id']}", resume))
    assert resumed["status"] == "completed"
    assert resumed["output"][0]["parts"][0]["content"] == "received: yes"

    slow = post(f"{mount}/runs", {"agent_name": "sync-echo", "mode": "async", "input": _input("later")})
    assert wait_for(get, f"{mount}/runs/{slow['run_id']}", "completed")["output"]

    slow = post(f"{mount}/runs", {"agent_name": "slow-echo", "mode": "async", "input": _input("never")})
    cancelling = within(LIMIT, lambda: post(f"{mount}/runs/{slow['run_id']}/cancel", {}))
    assert cancelling["status"] in ("cancelling", "cancelled")
    wait_for(get, f"{mount}/runs/{slow['run_id']}", "cancelled")


def wait_for(get: Get, path: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + LIMIT
    while True:
        run = within(LIMIT, lambda: get(path))
        if run["status"] == status:
            return run
        assert time.monotonic() < deadline, f"the run is still {run['status']}, never {status}"
        time.sleep(0.02)


def _httpx_calls(client: httpx.Client | TestClient) -> tuple[Get, Post]:
    return (lambda path: client.get(path).json()), (lambda path, body: client.post(path, json=body).json())


def _starlette() -> Starlette:
    return Starlette(routes=[Mount("/acp", app=ACPApp(demo_registry()))])


# Starlette and FastAPI -------------------------------------------------------------------------------
def test_starlette_testclient_without_with() -> None:
    # Each request runs on an event loop of its own that ends with it.
    exercise(*_httpx_calls(TestClient(_starlette())))


def test_starlette_testclient_with_with() -> None:
    with TestClient(_starlette()) as client:
        exercise(*_httpx_calls(client))


def test_acpapp_as_the_app_with_its_lifespan_then_without() -> None:
    app = ACPApp(demo_registry())
    with TestClient(app) as client:  # the lifespan: the portal's loop lives on and hosts the engine
        exercise(*_httpx_calls(client), mount="")
        assert not app.bridged
    exercise(*_httpx_calls(TestClient(app)), mount="")  # after shutdown, a loop per request again
    assert app.bridged


def test_acpmiddleware_testclient_without_with() -> None:
    app = ACPMiddleware(Starlette(), demo_registry(), prefix="/acp")
    exercise(*_httpx_calls(TestClient(app)))


def test_fastapi_testclient_without_with_streams_too() -> None:
    app = FastAPI()
    app.mount("/acp", ACPApp(demo_registry()))
    client = FastAPITestClient(app)
    exercise(*_httpx_calls(client))
    body = {"agent_name": "echo", "mode": "stream", "input": _input("hi")}
    text = within(LIMIT, lambda: client.post("/acp/runs", json=body).text)
    assert text.count("data: ") == 6
    assert '"type":"run.completed"' in text


@pytest.mark.anyio
async def test_a_servers_loop_still_hosts_the_engine() -> None:
    # httpx's ASGITransport in an async test: the test's loop in the main thread, as a server's.
    app = ACPApp(demo_registry())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
        with anyio.fail_after(LIMIT):
            body = {"agent_name": "echo", "input": _input("hi")}
            assert (await client.post("/runs", json=body)).json()["status"] == "completed"
    assert not app.bridged
    await app.aclose()


def test_loop_outlives_request_trusts_only_a_main_thread_loop_of_a_server() -> None:
    server_scope = {"client": ("127.0.0.1", 52345)}

    async def ask(scope: dict[str, Any]) -> bool:
        return loop_outlives_request(scope)

    assert asyncio.run(ask(server_scope))
    assert not asyncio.run(ask({"client": ("testclient", 50000)}))  # Starlette's TestClient
    assert not asyncio.run(ask({"client": ["127.0.0.1", 0]}))  # Django's AsyncClient
    answers: list[bool] = []
    thread = threading.Thread(target=lambda: answers.append(asyncio.run(ask(server_scope))))
    thread.start()
    thread.join(LIMIT)
    assert answers == [False]


# Flask -----------------------------------------------------------------------------------------------
def test_flask_test_client() -> None:
    app = Flask(__name__)
    ACP(app, demo_registry())
    client = app.test_client()
    exercise(
        lambda path: client.get(path).get_json(), lambda path, body: client.post(path, json=body).get_json()
    )


# Django ----------------------------------------------------------------------------------------------
@pytest.fixture
def fresh_sites() -> Iterator[None]:
    """The example project's mounts, with services started afresh by the test's clients."""
    sites = example_sites()
    for site in sites:
        site.close()
    yield
    for site in sites:
        site.close()


def _django_sync() -> tuple[Get, Post]:
    client = Client()
    return (
        lambda path: client.get(path).json(),
        lambda path, body: client.post(path, body, content_type="application/json").json(),
    )


def _django_async() -> tuple[Get, Post]:
    client = AsyncClient()
    return (
        lambda path: async_to_sync(client.get)(path).json(),
        lambda path, body: async_to_sync(client.post)(path, body, content_type="application/json").json(),
    )


@pytest.mark.usefixtures("fresh_sites")
def test_django_client() -> None:
    exercise(*_django_sync())


@pytest.mark.usefixtures("fresh_sites")
def test_django_async_client() -> None:
    # Each async_to_sync call runs on a loop of its own, as each async test of a TestCase does.
    exercise(*_django_async())


@pytest.mark.usefixtures("fresh_sites")
@pytest.mark.parametrize("first", ["sync", "async"])
def test_django_client_and_async_client_mixed_on_one_mount(first: str) -> None:
    sync_get, sync_post = _django_sync()
    async_get, async_post = _django_async()
    post_first, post_then = (sync_post, async_post) if first == "sync" else (async_post, sync_post)
    get_then = async_get if first == "sync" else sync_get

    asked = within(LIMIT, lambda: post_first("/acp/runs", {"agent_name": "awaiter", "input": _input("q")}))
    resume = {"await_resume": {"message": {"parts": [{"content": "ok"}]}}}
    resumed = within(LIMIT, lambda: post_then(f"/acp/runs/{asked['run_id']}", resume))
    assert resumed["output"][0]["parts"][0]["content"] == "received: ok"

    slow = post_first("/acp/runs", {"agent_name": "slow-echo", "mode": "async", "input": _input("x")})
    within(LIMIT, lambda: post_then(f"/acp/runs/{slow['run_id']}/cancel", {}))
    wait_for(get_then, f"/acp/runs/{slow['run_id']}", "cancelled")

    later = post_first("/acp/runs", {"agent_name": "sync-echo", "mode": "async", "input": _input("y")})
    wait_for(get_then, f"/acp/runs/{later['run_id']}", "completed")
