"""A client that drops an event stream frees what the stream held (its subscription to the run's
events; under WSGI also the bridge's pump), and the run goes on: in process through Django's own WSGI
and ASGI handlers, and under gunicorn and uvicorn."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import httpx
import pytest

from tests.deployments.base import Target, parse_sse, serve
from tests.django.asgi_request import http_scope, receive_body
from tests.django.conftest import Served
from tests.django.probe import open_subscriptions
from tests.helpers import TERMINAL, get_run, run_body, wait_for

pytestmark = pytest.mark.django

MESSAGES = ("a", "b", "c")  # slow-echo sleeps a second before each
BODY = json.dumps(run_body("slow-echo", *MESSAGES, mode="stream")).encode()


def poll(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
    return result


def first_run_id(chunk: bytes) -> str:
    events, _ = parse_sse(chunk.split(b"\n\n")[0] + b"\n\n")
    run_id: str = events[0].data["run"]["run_id"]
    return run_id


def check_run_goes_on(target: Target, run_id: str) -> None:
    run = wait_for(target, run_id, TERMINAL, timeout=15)
    assert run["status"] == "completed", run
    assert [message["parts"][0]["content"] for message in run["output"]] == list(MESSAGES)


# Django's own handlers check the database connections as each request starts and ends, which
# pytest-django allows only to tests marked django_db: nothing here stores anything.
@pytest.mark.django_db
def test_wsgi_a_dropped_stream_frees_its_subscription(wsgi: Served) -> None:
    from example_django.wsgi import application

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/acp/runs",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(BODY)),
        "wsgi.input": io.BytesIO(BODY),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
    }
    before = open_subscriptions()

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: object = None
    ) -> Callable[[bytes], object]:
        return lambda body: None  # PEP 3333's write(), which Django never calls

    result = application(environ, start_response)
    first = next(iter(result))
    assert open_subscriptions() == before + 1
    run_id = first_run_id(first)
    result.close()  # what a WSGI server does when the client has gone
    assert open_subscriptions() == before
    target = wsgi.target()
    assert get_run(target, run_id)["status"] == "in-progress"
    check_run_goes_on(target, run_id)


@pytest.mark.django_db
@pytest.mark.parametrize("gone_while", ["waiting for events", "writing"])
def test_asgi_a_dropped_stream_frees_its_subscription(asgi: Served, gone_while: str) -> None:
    from example_django.asgi import application

    async def drop() -> bytes:
        sent: list[bytes] = []
        during: list[int] = []
        gone = asyncio.Event()

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                sent.append(message["body"])
                during.append(open_subscriptions())
                gone.set()
                if gone_while == "writing":
                    await asyncio.Event().wait()  # a write that never ends, until Django cancels it

        await asyncio.wait_for(
            application(http_scope("POST", "/acp/runs"), receive_body(BODY, gone), send), 10
        )
        assert during == [before + 1], during
        return b"".join(sent)

    before = open_subscriptions()
    run_id = first_run_id(asgi.call(drop))
    # Closing is scheduled on the loop when Django closes the response: give it a moment.
    poll(lambda: open_subscriptions() == before, timeout=2.0)
    target = asgi.target()
    assert get_run(target, run_id)["status"] == "in-progress"
    check_run_goes_on(target, run_id)


# Under real servers ----------------------------------------------------------------------------------
SERVERS = {
    "gunicorn": [
        *("{python}", "-m", "gunicorn", "-w", "1", "-k", "gthread", "--threads", "32"),
        *("--graceful-timeout", "3", "-b", "{host}:{port}", "example_django.wsgi:application"),
    ],
    "uvicorn": [
        *("{python}", "-m", "uvicorn", "example_django.asgi:application"),
        *("--host", "{host}", "--port", "{port}"),
    ],
}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The example with ``/probe`` (tests.django.settings) under a real server, once per module."""
    env = {"DJANGO_SETTINGS_MODULE": "tests.django.settings"}
    with serve(SERVERS[request.param], env=env, name=f"django-tests-{request.param}") as target:
        yield target


def probe(target: Target) -> dict[str, Any]:
    response = httpx.get(target.base_url.rsplit("/acp", 1)[0] + "/probe", timeout=10)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def open_stream(client: httpx.Client, target: Target) -> tuple[str, httpx.Response, Iterator[bytes]]:
    """Start a stream and read up to its first event; return the run id, the open response and its
    iterator (which must stay referenced: a dropped iterator closes the connection)."""
    response = client.send(client.build_request("POST", target.base_url + "/runs", content=BODY), stream=True)
    assert response.status_code == 200
    chunks = response.iter_raw()
    received = b""
    while b"\n\n" not in received:
        received += next(chunks)
    return first_run_id(received), response, chunks


@pytest.mark.slow
def test_dropped_streams_free_their_subscriptions_under_a_real_server(server: Target) -> None:
    count = 10
    with httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        opened = [open_stream(client, server) for _ in range(count)]
        assert probe(server)["subscriptions"] == count
        for _, response, _ in opened:
            response.close()  # the connection goes away mid-stream
    # uvicorn tells Django at once; gunicorn notices at its next write (slow-echo writes every second).
    poll(lambda: probe(server)["subscriptions"] == 0, timeout=5.0)
    for run_id, _, _ in opened:
        check_run_goes_on(server, run_id)
    assert probe(server)["subscriptions"] == 0
