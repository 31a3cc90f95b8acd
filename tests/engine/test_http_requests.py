"""The neutral HTTP layer's request hygiene: media type, input caps, parsing off the loop, headers, CORS,
canonical ids, owners and the public URL."""

from __future__ import annotations

import gc
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import pytest

from acp_adapters import ACPService, AgentRegistry, Context, Settings
from acp_adapters.core.errors import AuthenticationRequired, TooManyRequests
from acp_adapters.core.http import Request, Response
from acp_adapters.models import Message, RunCreateRequest
from tests.engine.conftest import call
from tests.helpers import JSON, run_body

pytestmark = pytest.mark.anyio


def registry() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    async def echo(input: list[Message], context: Context) -> AsyncIterator[Message]:
        for message in input:
            yield message

    @agents.agent()
    async def ok(input: list[Message], context: Context) -> str:
        return "ok"

    return agents


async def send(
    service: ACPService,
    method: str,
    path: str,
    body: Any = None,
    headers: Mapping[str, str] = JSON,
    owner: str | None = None,
) -> Response:
    response = await call(service, method, path, body, owner=owner, headers=headers)
    assert isinstance(response, Response)
    return response


def error_of(response: Response, status: int, code: str = "invalid_input") -> dict[str, Any]:
    assert response.status == status, (response.status, response.body)
    error: dict[str, Any] = json.loads(response.body)
    assert error["code"] == code and error["message"], error
    return error


# media type ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data"],
)
async def test_a_post_body_declared_as_anything_but_json_is_a_415(content_type: str) -> None:
    service = ACPService(registry())
    for path in ("/runs", f"/runs/{uuid.uuid4()}", f"/runs/{uuid.uuid4()}/cancel"):
        response = await send(service, "POST", path, run_body("ok"), {"content-type": content_type})
        error = error_of(response, 415)
        assert error["data"] == {"content_type": content_type}, error


async def test_a_body_without_a_type_is_a_415_from_a_browser_of_another_site() -> None:
    service = ACPService(registry())
    for site in ("cross-site", "same-site"):
        response = await send(service, "POST", "/runs", run_body("ok"), {"sec-fetch-site": site})
        assert error_of(response, 415)["data"] == {"content_type": None}


async def test_a_body_without_a_type_from_a_program_is_taken_as_json() -> None:
    # acp-sdk 1.0 (the official Python client) sends its JSON bodies without a Content-Type.
    service = ACPService(registry())
    for headers in ({}, {"sec-fetch-site": "same-origin"}):
        assert (await send(service, "POST", "/runs", run_body("ok"), headers)).status == 200


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/vnd.acp+json"],
)
async def test_json_media_types_are_accepted(content_type: str) -> None:
    service = ACPService(registry())
    response = await send(service, "POST", "/runs", run_body("ok"), {"content-type": content_type})
    assert response.status == 200, response.body


# input caps ---------------------------------------------------------------------------------------
def parts_message(count: int) -> dict[str, Any]:
    return {"role": "user", "parts": [{"content": "x"}] * count}


@pytest.mark.parametrize(
    ("limit", "body"),
    [
        ("max_input_messages", {"agent_name": "ok", "input": [parts_message(1)] * 4}),
        ("max_input_parts", {"agent_name": "ok", "input": [parts_message(1), parts_message(4)]}),
        (
            "max_history_urls",
            {
                "agent_name": "ok",
                "input": [parts_message(1)],
                "session": {"id": str(uuid.uuid4()), "history": ["http://peer.example/r"] * 4},
            },
        ),
    ],
)
async def test_input_over_a_cap_is_a_422_naming_the_limit(limit: str, body: dict[str, Any]) -> None:
    capped: dict[str, Any] = {limit: 3}
    service = ACPService(registry(), settings=Settings(**capped))
    error = error_of(await send(service, "POST", "/runs", body), 422)
    assert error["data"] == {"limit": limit, limit: 3}, error
    assert limit in error["message"], error
    assert len(service.engine._executions) == 0  # no run started


async def test_at_the_caps_the_run_goes_ahead() -> None:
    service = ACPService(registry(), settings=Settings(max_input_messages=3, max_input_parts=3))
    response = await send(service, "POST", "/runs", {"agent_name": "ok", "input": [parts_message(3)] * 3})
    assert response.status == 200, response.body


async def test_a_resume_message_over_the_parts_cap_is_a_422() -> None:
    service = ACPService(registry(), settings=Settings(max_input_parts=2))
    body = {"await_resume": {"type": "message", "message": parts_message(3)}, "mode": "sync"}
    error = error_of(await send(service, "POST", f"/runs/{uuid.uuid4()}", body), 422)
    assert error["data"] == {"limit": "max_input_parts", "max_input_parts": 2}


# parsing off the loop -----------------------------------------------------------------------------
# Measured in CPU time, not wall time: on a busy machine the OS deschedules the process for longer
# than any useful bound (wall stalls of 0.5-1 s with the parse done right), while a CPU clock counts
# only work done. Two clocks are read at every tick of a ticker task on the loop: the loop thread's
# own (what the loop did in one stretch: the parse, were it done on the loop) and the process's (all
# that ran while the loop could not tick: a worker thread holding the GIL, say).
CLOCKS_FINE = all(time.get_clock_info(clock).resolution <= 1e-4 for clock in ("thread_time", "process_time"))


def cpu_clocks() -> tuple[float, float]:
    return time.thread_time(), time.process_time()


async def largest_cpu_stalls(service: ACPService, body: bytes) -> tuple[tuple[float, float], Response]:
    """The most CPU time spent between two ticks of a ticker on the loop while ``body`` was posted, by
    the loop's thread and by the whole process, up to the answer (the run's own work after it is not
    parsing)."""
    largest = (0.0, 0.0)
    answered: tuple[float, float] | None = None

    async def ticker() -> None:
        nonlocal largest
        last = cpu_clocks()
        while True:
            await anyio.sleep(0.002)
            now = answered or cpu_clocks()
            largest = (max(largest[0], now[0] - last[0]), max(largest[1], now[1] - last[1]))
            if answered:
                return
            last = now

    async with anyio.create_task_group() as group:
        group.start_soon(ticker)
        await anyio.sleep(0.01)
        response = await send(service, "POST", "/runs", body)
        answered = cpu_clocks()
    return largest, response


_SHAPES = {
    # At the caps, each part padded so that the body is near the maximum size: the run goes ahead.
    "at the caps": ([{"role": "user", "parts": [{"content": "x" * 395}] * 1000}] * 10, 202),
    "over the total parts cap": ([parts_message(1000)] * 255, 422),
    "one message over the parts cap": ([parts_message(255_000)], 422),
}


@pytest.mark.skipif(not CLOCKS_FINE, reason="this platform's CPU clocks are too coarse")
@pytest.mark.parametrize("shape", list(_SHAPES))
async def test_a_maximum_size_body_does_not_stall_the_loop(shape: str) -> None:
    service = ACPService(registry())
    await send(service, "GET", "/ping")  # the engine started
    messages, status = _SHAPES[shape]
    compact = (",", ":")
    body = json.dumps({"agent_name": "ok", "input": messages, "mode": "async"}, separators=compact).encode()
    assert 4_000_000 < len(body) <= Settings().max_body_size
    # Garbage collection is off while measuring: a collection falls to whichever thread allocates, and
    # takes tens to hundreds of milliseconds in a large test process. It is not parsing.
    gc.disable()
    try:
        # The controls, on this thread, in the same conditions: decoding the body as the service does,
        # and the least CPU any parse of it needs (decoded, and validated where it is under the caps).
        decode = cpu_time(json.loads, body)
        parse = decode if status != 202 else cpu_time(RunCreateRequest.model_validate_json, body)
        (loop_thread, process), response = await largest_cpu_stalls(service, body)
    finally:
        gc.enable()
    assert response.status == status, response.body[:300]
    report = f"decode {decode * 1000:.0f} ms, parse {parse * 1000:.0f} ms of CPU"
    # The loop's thread parses nothing (~1 ms in a stretch); parsing on the loop costs it about `parse`.
    assert loop_thread < parse / 3, f"the loop's thread ran {loop_thread * 1000:.0f} ms at once ({report})"
    # Decoding the JSON in the worker (in C, without releasing the GIL) is the one step that holds the
    # loop, with the ticker's period and a switch interval (5 ms) around it: ~1-2 decodes. Validating
    # lets the GIL switch (validating 255,000 parts before the caps, on the loop: 5-8 decodes).
    bound = 2 * decode + 0.01
    assert process < bound, f"the loop was held for {process * 1000:.0f} ms of CPU ({report})"


def cpu_time(function: Any, *args: Any) -> float:
    """The median CPU time of three calls of ``function`` on this thread."""
    times = []
    for _ in range(3):
        started = time.thread_time()
        function(*args)
        times.append(time.thread_time() - started)
    return sorted(times)[1]


# error headers, CORS ------------------------------------------------------------------------------
def raising(exc: Exception) -> Any:
    def authorize(request: Request, agent: str | None) -> None:
        raise exc

    return authorize


async def test_the_headers_of_an_error_are_sent_with_it() -> None:
    service = ACPService(
        registry(), authorize=raising(TooManyRequests("slow down", limit="x", value=1, retry_after=7))
    )
    response = await send(service, "GET", "/agents")
    error_of(response, 429)
    assert ("retry-after", "7") in response.headers
    service = ACPService(
        registry(), authorize=raising(AuthenticationRequired(challenge='Bearer realm="acp"'))
    )
    response = await send(service, "GET", "/agents/ok")
    error_of(response, 401)
    assert ("www-authenticate", 'Bearer realm="acp"') in response.headers


async def test_cors_headers_go_with_every_answer_to_an_allowed_origin_only() -> None:
    settings = Settings(cors_origins=("https://app.example.com",))
    service = ACPService(
        registry(), settings=settings, authorize=raising(AuthenticationRequired(challenge="Bearer"))
    )
    allowed = {**JSON, "origin": "https://app.example.com"}
    for method, path in (("GET", "/ping"), ("GET", "/agents"), ("GET", "/nope"), ("OPTIONS", "/runs")):
        headers = dict((await send(service, method, path, headers=allowed)).headers)
        assert headers["access-control-allow-origin"] == "https://app.example.com", (method, path)
        assert "idempotency-key" in headers["access-control-allow-headers"]
        assert "retry-after" in headers["access-control-expose-headers"]
        assert headers["vary"] == "origin"
    for other in ("https://app.example.co", "h", "https://app.example.com.evil.example", "null", ""):
        headers = dict((await send(service, "GET", "/ping", headers={"origin": other})).headers)
        assert "access-control-allow-origin" not in headers, other
        assert headers["vary"] == "origin"


async def test_options_without_cors_is_a_405_that_names_the_setting() -> None:
    service = ACPService(registry())
    error = error_of(await send(service, "OPTIONS", "/runs", headers={"origin": "https://a.example"}), 405)
    assert "cors_origins" in error["message"], error


# canonical ids ------------------------------------------------------------------------------------
async def test_the_run_id_header_is_the_canonical_id() -> None:
    service = ACPService(registry())
    run = json.loads((await send(service, "POST", "/runs", run_body("ok", mode="async"))).body)
    rid = uuid.UUID(run["run_id"])
    for text in (rid.hex, str(rid).upper(), "{" + str(rid) + "}", f"urn:uuid:{rid}"):
        for path in (f"/runs/{text}", f"/runs/{text}/events"):
            response = await send(service, "GET", path)
            assert response.status == 200, (path, response.body)
            assert ("run-id", str(rid)) in response.headers, (path, response.headers)


@pytest.mark.parametrize("prefix", [" ", "\t", "\r", "\n", "\r\nX-Evil: 1\r\n"])
async def test_a_path_id_with_control_characters_is_a_422_that_does_not_echo_them(prefix: str) -> None:
    service = ACPService(registry())
    rid = str(uuid.uuid4())
    for method, path in (
        ("GET", f"/runs/{prefix}{rid}"),
        ("POST", f"/runs/{prefix}{rid}/cancel"),
        ("GET", f"/sessions/{prefix}{rid}"),
        ("GET", f"/resources/{prefix}{rid}"),
    ):
        response = await send(service, method, path, b"" if method == "POST" else None)
        error = error_of(response, 422)
        assert not any(ch in error["message"] for ch in "\t\r\n"), error
        assert all(name != "run-id" for name, _ in response.headers)


async def test_control_characters_in_unknown_paths_are_not_echoed() -> None:
    service = ACPService(registry())
    error = error_of(await send(service, "GET", "/agents/a\r\nb"), 404, "not_found")
    assert "\r" not in error["message"] and "\n" not in error["message"]
    response = await send(service, "GET", "/no\x00such")
    assert response.status == 404 and b"\\u0000" not in response.body and b"\\x00" in response.body


# owners, public URL -------------------------------------------------------------------------------
async def test_an_empty_owner_is_no_owner() -> None:
    service = ACPService(registry())
    run = json.loads((await send(service, "POST", "/runs", run_body("ok"), owner="")).body)
    record = await service.store.get_run(uuid.UUID(run["run_id"]))
    assert record is not None and record.owner is None
    assert (await send(service, "GET", f"/runs/{run['run_id']}", owner=None)).status == 200


async def test_history_urls_use_the_public_url_when_it_is_set() -> None:
    for public_url, base in (
        ("https://api.example.com/acp/", "https://api.example.com/acp"),
        (None, "http://test/acp"),
    ):
        service = ACPService(registry(), settings=Settings(public_url=public_url))
        session = str(uuid.uuid4())
        response = await send(service, "POST", "/runs", {**run_body("echo", "hi"), "session_id": session})
        assert response.status == 200, response.body
        history = json.loads((await send(service, "GET", f"/sessions/{session}")).body)["history"]
        assert len(history) == 2 and all(url.startswith(base + "/resources/") for url in history), history
