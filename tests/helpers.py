"""What the contract tests share: request bodies, checked answers, polling, and the demo agents' outputs.

Every ``ok_*`` / ``acp_error`` / ``stream_events`` helper validates the body against ``openapi.yaml``
(through :mod:`tests.schema`), so no answer escapes the spec check.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

import httpx

from tests.deployments.base import HttpResult, Target, parse_sse
from tests.schema import assert_valid

PNG_1X1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="

#: Every demo agent, as /work/shared/acp/demo-agents.md lists them.
DEMO_AGENTS = (
    "echo",
    "sync-echo",
    "gen-echo",
    "slow-echo",
    "history-echo",
    "sessioner",
    "awaiter",
    "failer",
    "raiser",
    "crasher",
    "mime-types",
    "base64-encoding",
    "artifact-producer",
    "chunks",
    "tool-trajectory",
)
#: The headers of a JSON body (POST bodies must declare it: 415 otherwise).
JSON = {"content-type": "application/json"}
TERMINAL = ("completed", "failed", "cancelled")
TERMINAL_EVENTS = ("run.completed", "run.failed", "run.cancelled")
EVENT_SCHEMAS = {
    "message.created": "MessageCreatedEvent",
    "message.part": "MessagePartEvent",
    "message.completed": "MessageCompletedEvent",
    "generic": "GenericEvent",
    "run.created": "RunCreatedEvent",
    "run.in-progress": "RunInProgressEvent",
    "run.awaiting": "RunAwaitingEvent",
    "run.completed": "RunCompletedEvent",
    "run.failed": "RunFailedEvent",
    "run.cancelled": "RunCancelledEvent",
    "error": "ErrorEvent",
}


# --- request bodies ---------------------------------------------------------------------------------


def message(text: str, role: str = "user") -> dict[str, Any]:
    """A one-part ``text/plain`` message."""
    return {"role": role, "parts": [{"content_type": "text/plain", "content": text}]}


def run_body(agent: str, *texts: str, mode: str = "sync", **extra: Any) -> dict[str, Any]:
    """A ``POST /runs`` body with one user message per text (``"Hello"`` if none)."""
    return {"agent_name": agent, "input": [message(t) for t in (texts or ("Hello",))], "mode": mode, **extra}


def resume_body(text: str, mode: str = "sync") -> dict[str, Any]:
    """A resume body as the official clients send it: without ``run_id``."""
    return {"await_resume": {"type": "message", "message": message(text)}, "mode": mode}


# --- checked answers --------------------------------------------------------------------------------


def ok_json(result: HttpResult, status: int, schema: str | None) -> Any:
    """Assert a JSON answer with ``status`` whose body validates against ``schema``; return the body."""
    assert result.status == status, f"expected {status}, got {result!r}"
    assert result.headers.get("content-type", "").startswith("application/json"), result
    body = result.json()
    if schema is not None:
        assert_valid(body, schema)
    return body


def acp_error(result: HttpResult, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert an ACP error answer (``{code, message, data?}``, valid ``Error``); return the body."""
    assert result.status == status, f"expected {status}, got {result!r}"
    assert 400 <= result.status < 500, result
    assert result.headers.get("content-type", "").startswith("application/json"), result
    body = result.json()
    assert_valid(body, "Error")
    if code is not None:
        assert body["code"] == code, body
    assert body["message"], body
    return dict(body)


def check_run_id_header(result: HttpResult, run: dict[str, Any]) -> None:
    """Run answers carry the run's id in a ``Run-ID`` header."""
    assert result.headers.get("run-id") == run["run_id"], result.headers


def check_event(data: Any) -> None:
    """Validate one event against its own schema (readable errors) and against ``Event``."""
    assert isinstance(data, dict), f"event is not an object: {data!r}"
    assert data.get("type") in EVENT_SCHEMAS, f"unknown event {data!r}"
    assert_valid(data, EVENT_SCHEMAS[data["type"]])
    assert_valid(data, "Event")


def stream_events(result: HttpResult, *, first_id: int | None = 0) -> list[dict[str, Any]]:
    """Assert an event-stream answer and return its events' data, each validated.

    Checks the status and headers, that ``id:`` lines count up by one (from ``first_id`` if given), that
    the stream ends with a terminal event or ``run.awaiting`` (and nothing after it).
    """
    assert result.status == 200, result
    assert result.headers.get("content-type", "").startswith("text/event-stream"), result.headers
    assert "no-cache" in result.headers.get("cache-control", ""), result.headers
    assert result.headers.get("x-accel-buffering") == "no", result.headers
    events = result.sse_events()
    assert events, f"empty stream: {result!r}"
    ids = [event.id for event in events]
    assert all(i is not None and i.isdigit() for i in ids), ids
    numbers = [int(i) for i in ids if i is not None]
    start = numbers[0] if first_id is None else first_id
    assert numbers == list(range(start, start + len(numbers))), ids
    data = [event.data for event in events]
    for item in data:
        check_event(item)
    types = [item["type"] for item in data]
    assert types[-1] in (*TERMINAL_EVENTS, "run.awaiting"), types
    assert not any(t in TERMINAL_EVENTS for t in types[:-1]), types
    return data


def sse_data(body: bytes) -> list[Any]:
    """The parsed ``data`` of each event of an event-stream body, unchecked (for the engine's streams)."""
    return [event.data for event in parse_sse(body)[0]]


def event_types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


# --- runs -------------------------------------------------------------------------------------------


def create(target: Target, body: dict[str, Any]) -> HttpResult:
    return target.client.request("POST", "/runs", json=body)


def run_sync(target: Target, agent: str, *texts: str, **extra: Any) -> dict[str, Any]:
    """Create a sync run and return the checked ``Run``."""
    result = create(target, run_body(agent, *texts, **extra))
    run = ok_json(result, 200, "Run")
    check_run_id_header(result, run)
    return dict(run)


def get_run(target: Target, run_id: str) -> dict[str, Any]:
    return dict(ok_json(target.client.request("GET", f"/runs/{run_id}"), 200, "Run"))


def wait_for(target: Target, run_id: str, statuses: Iterable[str], timeout: float = 20.0) -> dict[str, Any]:
    """Poll ``GET /runs/{id}`` until the run's status is one of ``statuses``; return the run."""
    wanted = set(statuses)
    deadline = time.monotonic() + timeout
    run = get_run(target, run_id)
    while run["status"] not in wanted:
        assert time.monotonic() < deadline, (
            f"run still {run['status']!r} after {timeout}s, wanted {wanted}: {run}"
        )
        assert run["status"] not in TERMINAL, f"run ended {run['status']!r}, wanted {wanted}: {run}"
        time.sleep(0.05)
        run = get_run(target, run_id)
    return run


def run_events(target: Target, run_id: str) -> list[dict[str, Any]]:
    """``GET /runs/{id}/events``, checked."""
    body = ok_json(target.client.request("GET", f"/runs/{run_id}/events"), 200, "RunEventsListResponse")
    for event in body["events"]:
        check_event(event)
    return list(body["events"])


async def concurrent_streams(base_url: str, count: int, parts: int) -> float:
    """Stream ``count`` runs of ``chunks`` at once, each on a connection of its own, and assert that each
    carries every event once, in order, with its ``parts`` parts; return the seconds they took."""
    limits = httpx.Limits(max_connections=count + 50, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:

        async def stream(i: int) -> None:
            answer = await http.post(base_url + "/runs", json=run_body("chunks", str(parts), mode="stream"))
            assert answer.status_code == 200, answer.text
            events, _ = parse_sse(answer.content)
            types = [event.data["type"] for event in events]
            assert types[:2] == ["run.created", "run.in-progress"], (i, types[:3])
            assert types[-1] == "run.completed", (i, types[-3:])
            assert [int(event.id) for event in events if event.id is not None] == list(range(len(events)))
            contents = [
                event.data["part"]["content"] for event in events if event.data["type"] == "message.part"
            ]
            assert contents == [f"{n} " for n in range(parts)]

        started = time.monotonic()
        await asyncio.gather(*(stream(i) for i in range(count)))
        return time.monotonic() - started


# --- outputs ----------------------------------------------------------------------------------------


def part(content: str | None, content_type: str = "text/plain", **fields: Any) -> dict[str, Any]:
    """A message part in normal form (see :func:`normal_part`)."""
    return normal_part({"content": content, "content_type": content_type, **fields})


def normal_part(raw: dict[str, Any]) -> dict[str, Any]:
    """A part without ``null`` fields, with the spec's defaults filled in, metadata without ``null``."""
    out = {key: value for key, value in raw.items() if value is not None}
    out.setdefault("content_type", "text/plain")
    out.setdefault("content_encoding", "plain")
    if isinstance(out.get("metadata"), dict):
        out["metadata"] = {key: value for key, value in out["metadata"].items() if value is not None}
    return out


def output_parts(run: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The run's output as a list of messages, each a list of parts in normal form."""
    return [[normal_part(p) for p in m["parts"]] for m in run["output"]]


def output_texts(run: dict[str, Any]) -> list[str]:
    """The text of each output message (its text/plain parts joined)."""
    return [
        "".join(
            p.get("content") or "" for p in m["parts"] if p.get("content_type", "text/plain") == "text/plain"
        )
        for m in run["output"]
    ]


def expected_output(agent: str, text: str, run: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """What a completed run of a demo agent given one user message ``text`` outputs (parts per message)."""
    echo = [[part(text)]]
    if agent in ("echo", "sync-echo", "gen-echo", "slow-echo", "history-echo"):
        return echo
    if agent == "sessioner":
        return [[part(run["session_id"])]]
    if agent == "mime-types":
        return [
            [
                part("<h1>HTML Content</h1>", "text/html"),
                part('{"key": "value"}', "application/json"),
                part("console.log('Hello');", "application/javascript"),
                part("body { color: red; }", "text/css"),
            ]
        ]
    if agent == "base64-encoding":
        return [[part(PNG_1X1, "image/png", content_encoding="base64"), part("This is plain text")]]
    if agent == "artifact-producer":
        return [
            [
                part("Processing with artifacts"),
                part("This is a text artifact result", name="text-result.txt"),
                part('{"results": [1, 2, 3], "status": "complete"}', "application/json", name="data.json"),
                part(PNG_1X1, "image/png", name="image.png", content_encoding="base64"),
            ]
        ]
    if agent == "chunks":
        try:
            count = int(text.strip())
        except ValueError:
            count = 10
        return [[part(f"{i} ") for i in range(count)]]
    if agent == "tool-trajectory":
        trajectory = {
            "kind": "trajectory",
            "tool_name": "search",
            "tool_input": {"q": text},
            "tool_output": {"hits": 1},
        }
        citation = {
            "kind": "citation",
            "url": "https://example.org",
            "title": "Example",
            "start_index": 0,
            "end_index": 5,
        }
        return [[part("", metadata=trajectory), part("Hello", metadata=citation)]]
    raise AssertionError(f"no expected output for {agent}")


#: Agents whose run fails, and how.
FAILING = {
    "failer": ("invalid_input", "Wrong question buddy!"),
    "raiser": ("invalid_input", "Wrong question buddy!"),
    "crasher": ("server_error", None),
}
COMPLETING = tuple(a for a in DEMO_AGENTS if a not in FAILING and a != "awaiter")


def check_finished_run(agent: str, text: str, run: dict[str, Any]) -> None:
    """Assert what a finished run of ``agent`` given ``text`` must look like (completed or failed)."""
    assert run["agent_name"] == agent, run
    uuid.UUID(run["run_id"])
    assert run.get("finished_at"), run
    assert run.get("await_request") is None, run
    if agent in FAILING:
        code, text_of_error = FAILING[agent]
        assert run["status"] == "failed", run
        assert run["error"]["code"] == code, run
        if text_of_error is not None:
            assert run["error"]["message"] == text_of_error, run
        else:
            leaked = json.dumps(run["error"])
            # Not even the exception's text: it may carry internals (paths, queries, secrets).
            for sign in ("Traceback", 'File "', ".py", "line ", "RuntimeError", "boom"):
                assert sign not in leaked, f"internals leaked in the error: {run['error']}"
        return
    assert run["status"] == "completed", run
    assert run.get("error") is None, run
    assert all(m["role"] == f"agent/{agent}" for m in run["output"]), run["output"]
    assert output_parts(run) == expected_output(agent, text, run), run["output"]
