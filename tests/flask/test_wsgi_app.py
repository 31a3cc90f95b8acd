"""The generic WSGI app and middleware, and the bridge under them: mounting, the environ, body limits,
one loop per process (also after a fork), dropped streams in process, a clean exit."""

from __future__ import annotations

import io
import multiprocessing
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from typing import Any

import pytest
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client, TestResponse
from werkzeug.wrappers import Response

from acp_adapters._wsgi_environ import read_body, request_from_environ
from acp_adapters.bridge import _LOOP
from acp_adapters.wsgi import ACPWSGIApp, ACPWSGIMiddleware
from example_agents import DEMO_SETTINGS, demo_registry
from tests.deployments.base import REPO_ROOT
from tests.flask.app import count_pumps, registry_for_tests
from tests.helpers import run_body

pytestmark = pytest.mark.flask


def json_of(response: TestResponse) -> Any:
    """The JSON body of a test client's response (typed ``Any``, as tests index into it)."""
    return response.get_json()


def host_app(environ: dict[str, Any], start_response: Any) -> Any:
    return Response(f"host app at {environ['PATH_INFO']}")(environ, start_response)


def post_run(client: Client, url: str, agent: str, *texts: str, **extra: Any) -> Any:
    response = client.post(url, json=run_body(agent, *texts, **extra))
    assert response.status_code == 200, response.data
    return json_of(response)


def test_the_app_mounted_under_a_script_name_builds_its_urls_from_it() -> None:
    acp = ACPWSGIApp(demo_registry(), settings=DEMO_SETTINGS)
    client = Client(DispatcherMiddleware(host_app, {"/api/acp": acp}))
    assert client.get("/api/acp/ping").status_code == 200
    assert client.get("/elsewhere").get_data() == b"host app at /elsewhere"
    run = post_run(client, "/api/acp/runs", "echo", "hi", session_id=str(uuid.uuid4()))
    session = json_of(client.get(f"/api/acp/sessions/{run['session_id']}"))
    assert session["history"], session
    for url in session["history"]:
        assert url.startswith("http://localhost/api/acp/resources/"), url
        assert client.get(url.removeprefix("http://localhost")).status_code == 200


def test_the_middleware_serves_its_prefix_and_passes_the_rest_on() -> None:
    client = Client(ACPWSGIMiddleware(host_app, demo_registry(), prefix="/acp/"))
    assert json_of(client.get("/acp/ping")) == {}
    assert json_of(client.get("/acp"))["code"] == "not_found"
    assert client.get("/acpx/ping").get_data() == b"host app at /acpx/ping"
    assert client.get("/").get_data() == b"host app at /"
    missing = client.get("/acp/runs/not-a-uuid")
    assert missing.status_code == 422
    assert json_of(missing)["code"] == "invalid_input"


def test_the_owner_comes_from_the_environ() -> None:
    acp = ACPWSGIApp(demo_registry(), owner=lambda environ: environ.get("REMOTE_USER"))
    client = Client(acp)
    run = json_of(client.post("/runs", json=run_body("echo"), environ_overrides={"REMOTE_USER": "alice"}))
    assert client.get(f"/runs/{run['run_id']}", environ_overrides={"REMOTE_USER": "alice"}).status_code == 200
    assert client.get(f"/runs/{run['run_id']}", environ_overrides={"REMOTE_USER": "bob"}).status_code == 404


def test_request_from_environ() -> None:
    environ = {
        "REQUEST_METHOD": "post",
        "SCRIPT_NAME": "/mount",
        "PATH_INFO": "/agents/caf\u00c3\u00a9",  # UTF-8 bytes of "café" as PEP 3333 hands them over
        "QUERY_STRING": "limit=1",
        "SERVER_NAME": "example.org",
        "SERVER_PORT": "443",
        "wsgi.url_scheme": "https",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "2",
        "HTTP_X_TRACE_ID": "abc",
        "wsgi.input": io.BytesIO(b"{}"),
    }
    request = request_from_environ(environ, max_body_size=100, owner="me")
    assert request.method == "POST"
    assert request.path == "/agents/café"
    assert request.base_url == "https://example.org/mount"
    assert request.query == "limit=1"
    assert request.headers == {"content-type": "application/json", "content-length": "2", "x-trace-id": "abc"}
    assert request.body == b"{}"
    assert request.owner == "me"
    environ.update({"HTTP_HOST": "proxy:8080", "wsgi.url_scheme": "http", "PATH_INFO": "", "SCRIPT_NAME": ""})
    environ["wsgi.input"] = io.BytesIO(b"{}")
    request = request_from_environ(environ, max_body_size=100)
    assert (request.base_url, request.path) == ("http://proxy:8080", "/")


@pytest.mark.parametrize(
    ("length", "terminated", "expected"),
    [
        ("5", False, b"01234"),
        ("5000", False, b"0123456789a"),  # limit 10: at most 11 bytes, whatever the length says
        (None, False, b""),  # no length and no end marker: PEP 3333 says read nothing
        (None, True, b"0123456789a"),
        ("nonsense", False, b""),
        ("-3", False, b""),
    ],
)
def test_read_body_stops_after_the_limit(length: str | None, terminated: bool, expected: bytes) -> None:
    environ: dict[str, Any] = {"wsgi.input": io.BytesIO(b"0123456789abcdefghij" * 100)}
    if length is not None:
        environ["CONTENT_LENGTH"] = length
    if terminated:
        environ["wsgi.input_terminated"] = True
    assert read_body(environ, 10) == expected


def test_a_large_body_gets_an_acp_413() -> None:
    client = Client(ACPWSGIApp(demo_registry(), settings=DEMO_SETTINGS.__class__(max_body_size=50)))
    response = client.post("/runs", json=run_body("echo", "x" * 100))
    assert response.status_code == 413
    assert json_of(response)["code"] == "invalid_input"


def test_one_loop_thread_serves_every_request_and_every_app() -> None:
    apps = [Client(ACPWSGIApp(demo_registry())) for _ in range(3)]

    def work() -> None:
        for client in apps:
            assert post_run(client, "/runs", "sync-echo")["status"] == "completed"

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    loops = [t for t in threading.enumerate() if t.name == "acp-adapters-loop"]
    assert len(loops) == 1
    assert loops[0].daemon


def test_closing_a_stream_in_process_ends_the_subscription_not_the_run() -> None:
    client = Client(ACPWSGIApp(registry_for_tests()))
    assert json_of(client.get("/ping")) == {}
    portal = _LOOP.running_portal()
    assert portal is not None
    before = portal.call(count_pumps)
    response = client.post("/runs", json=run_body("ticker", "30", mode="stream"), buffered=False)
    first = next(response.iter_encoded())
    assert b"run.created" in first
    run_id = first.split(b'"run_id":"')[1].split(b'"')[0].decode()
    assert portal.call(count_pumps) == before + 1
    response.close()  # what a WSGI server does when the client goes away
    # The subscription has ended when close() returns; the run goes on.
    assert portal.call(count_pumps) == before
    assert json_of(client.get(f"/runs/{run_id}"))["status"] in ("created", "in-progress")
    deadline = time.monotonic() + 10
    while (run := json_of(client.get(f"/runs/{run_id}")))["status"] != "completed":
        assert time.monotonic() < deadline, run
        time.sleep(0.05)
    assert len(run["output"][0]["parts"]) == 30


def _serve_in_child(queue: Any) -> None:
    from tests.flask.test_wsgi_app import _APP_BEFORE_FORK

    try:
        response = _APP_BEFORE_FORK.post("/runs", json=run_body("sync-echo", "from the child"))
        loops = [t for t in threading.enumerate() if t.name == "acp-adapters-loop"]
        queue.put((response.status_code, json_of(response)["output"][0]["parts"][0]["content"], len(loops)))
    except BaseException as exc:  # the parent reports it
        queue.put(repr(exc))


_APP_BEFORE_FORK = Client(ACPWSGIApp(demo_registry()))


@pytest.mark.skipif(not hasattr(multiprocessing, "get_context") or sys.platform == "win32", reason="no fork")
def test_a_forked_worker_gets_its_own_loop() -> None:
    # The parent has served a request: its loop runs. gunicorn forks its workers like this.
    assert post_run(_APP_BEFORE_FORK, "/runs", "sync-echo")["status"] == "completed"
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_serve_in_child, args=(queue,))
    child.start()
    answer = queue.get(timeout=30)
    child.join(10)
    assert answer == (200, "from the child", 1)
    assert child.exitcode == 0
    # The parent's loop is untouched.
    assert post_run(_APP_BEFORE_FORK, "/runs", "sync-echo")["status"] == "completed"


def test_a_process_exits_promptly_with_runs_still_going() -> None:
    script = textwrap.dedent(
        """
        import threading
        from werkzeug.test import Client, TestResponse
        from acp_adapters.wsgi import ACPWSGIApp
        from tests.flask.app import count_pumps, registry_for_tests
        from tests.helpers import run_body

        client = Client(ACPWSGIApp(registry_for_tests()))
        # A sync agent blocked in its thread, an async run and an open stream.
        blocked = {"json": run_body("blocker")}
        threading.Thread(target=client.post, args=("/runs",), kwargs=blocked, daemon=True).start()
        assert client.post("/runs", json=run_body("slow-echo", "a", "b", mode="async")).status_code == 202
        stream = client.post("/runs", json=run_body("ticker", "1000", mode="stream"), buffered=False)
        next(iter(stream.response))
        print("serving", flush=True)
        """
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "serving" in result.stdout
    # Bounded by the bridge's close timeout (5 s), not by the blocked agent (30 s).
    assert time.monotonic() - started < 15, result.stderr


def test_a_body_a_little_over_the_limit_is_read_to_its_end_and_a_far_larger_one_is_not() -> None:
    import io

    from acp_adapters._wsgi_environ import read_body

    near = io.BytesIO(b"x" * 1500)
    assert read_body({"wsgi.input": near, "CONTENT_LENGTH": "1500"}, 1000) == b"x" * 1001
    assert near.tell() == 1500  # dropped: the server does not close on an unread body (a reset)
    far = io.BytesIO(b"x" * (3 * 1024 * 1024))
    body = read_body({"wsgi.input": far, "CONTENT_LENGTH": str(3 * 1024 * 1024)}, 1000)
    assert len(body) == 1001 and far.tell() == 1001  # not read past the limit
