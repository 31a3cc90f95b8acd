"""The neutral HTTP layer: errors, owners, retention, sessions and the store being down."""

from __future__ import annotations

import gc
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from acp_adapters import ACPService, AgentRegistry, Context, Settings
from acp_adapters.core.http import Request, Response
from acp_adapters.core.memory_store import MemoryStore
from acp_adapters.core.resources import origin_is_trusted
from acp_adapters.core.store import StoreUnavailable
from acp_adapters.models import Message
from tests.helpers import run_body

from .conftest import Call

pytestmark = pytest.mark.anyio


def echo_registry() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    async def echo(input: list[Message], context: Context) -> AsyncIterator[Message]:
        async for message in context.session.load_history():
            yield message
        for message in input:
            yield message

    return agents


async def test_runs_and_sessions_are_visible_to_their_owner_only(make_call: Any) -> None:
    call = make_call(echo_registry())
    session = str(uuid.uuid4())
    body = {**run_body("echo"), "session_id": session}
    status, run = await call.json("POST", "/runs", body, owner="alice")
    assert status == 200
    for path in (f"/runs/{run['run_id']}", f"/runs/{run['run_id']}/events", f"/sessions/{session}"):
        assert (await call.json("GET", path, owner="bob"))[0] == 404
        assert (await call.json("GET", path, owner="alice"))[0] == 200
    assert (await call.json("POST", "/runs", body, owner="bob"))[0] == 404


async def test_finished_runs_are_evicted_beyond_the_bound(make_call: Any) -> None:
    call = make_call(echo_registry(), max_finished_runs=3)
    ids = [(await call.run("echo"))[1]["run_id"] for _ in range(5)]
    found = [(await call.json("GET", f"/runs/{run_id}"))[0] for run_id in ids]
    assert found == [404, 404, 200, 200, 200]


async def test_untrusted_history_urls_are_never_fetched(make_call: Any) -> None:
    call = make_call(echo_registry())
    session = {"id": str(uuid.uuid4()), "history": ["http://169.254.169.254/latest/meta-data"]}
    status, run = await call.json("POST", "/runs", {**run_body("echo", "mine"), "session": session})
    assert status == 200 and [m["parts"][0]["content"] for m in run["output"]] == ["mine"]


def test_trusted_origin_patterns() -> None:
    trusted = ("http://127.0.0.1:9000", "https://peer.example:8443")  # exact origins, no wildcards
    assert origin_is_trusted("http://127.0.0.1:9000/acp/resources/x", trusted)
    assert origin_is_trusted("https://peer.example:8443/r", trusted)
    assert not origin_is_trusted("https://peer.example/r", trusted)
    assert not origin_is_trusted("http://127.0.0.1.evil.example:9000/", trusted)
    assert not origin_is_trusted("file:///etc/passwd", trusted)
    assert not origin_is_trusted("http://10.0.0.1/", ())


class DownStore(MemoryStore):
    async def get_run(self, run_id: uuid.UUID) -> Any:
        raise StoreUnavailable("connection refused")


class BrokenStore(MemoryStore):
    async def get_session(self, session_id: uuid.UUID) -> Any:
        raise RuntimeError("/secret/path line 3")


async def test_store_outage_is_a_503_and_bugs_a_500_without_internals() -> None:
    down = Call(ACPService(echo_registry(), store=DownStore()))
    status, error = await down.json("GET", f"/runs/{uuid.uuid4()}")
    assert status == 503 and error == {"code": "server_error", "message": "the store is unreachable"}
    broken = Call(ACPService(echo_registry(), store=BrokenStore()))
    status, error = await broken.json("GET", f"/sessions/{uuid.uuid4()}")
    assert status == 500 and "secret" not in str(error) and error["code"] == "server_error"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "/runs", b"{", 422, None),
        ("POST", "/runs", b"[]", 422, "body"),
        ("POST", "/runs", b'{"agent_name": "echo", "input": []}', 422, "input"),
        (
            "POST",
            "/runs",
            b'{"agent_name": "echo", "input": [{"role": "robot", "parts": []}]}',
            422,
            "input.0.role",
        ),
        ("POST", "/runs", b'{"agent_name": "nope", "input": [{"parts": [{"content": "x"}]}]}', 404, None),
        ("GET", "/runs/not-a-uuid", b"", 422, "run_id"),
        ("GET", "/agents?limit=0", b"", 422, "limit"),
        ("GET", "/agents?offset=-1", b"", 422, "offset"),
        ("GET", "/agents?limit=x", b"", 422, "limit"),
        ("DELETE", "/runs", b"", 405, None),
        ("GET", "/nowhere", b"", 404, None),
    ],
)
async def test_bad_requests_get_acp_errors(
    make_call: Any, method: str, path: str, body: bytes, status: int, field: str | None
) -> None:
    call = make_call(echo_registry())
    path, _, query = path.partition("?")
    response = await call(method, path, body, query=query)
    assert isinstance(response, Response)
    error = json.loads(response.body)
    assert response.status == status, error
    assert error["code"] == ("not_found" if status == 404 else "invalid_input"), error
    if field is not None:
        fields = error["data"]["fields"]
        names = [f["field"] if isinstance(f, dict) else f for f in fields]
        assert any(name.startswith(field) for name in names), names


async def test_body_over_the_limit_is_a_413() -> None:
    service = ACPService(echo_registry(), settings=Settings(max_body_size=100))
    request = Request("POST", "/runs", "http://t/acp", body=b"x" * 101)
    response = await service.handle(request)
    assert isinstance(response, Response) and response.status == 413


def counting_registry() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    async def counter(input: list[Message], context: Context) -> AsyncIterator[str]:
        """Counts its runs in the session's state."""
        state = await context.session.load_state()
        count = int(state or b"0") + 1
        await context.session.store_state(str(count).encode())
        yield str(count)

    return agents


async def test_the_state_an_agent_stores_is_kept_with_the_session(make_call: Any) -> None:
    call = make_call(counting_registry())
    session_id = str(uuid.uuid4())
    body = {**run_body("counter"), "session_id": session_id}
    outputs = []
    for _ in range(3):
        status, run = await call.json("POST", "/runs", body)
        assert status == 200, run
        outputs.append(run["output"][0]["parts"][0]["content"])
    assert outputs == ["1", "2", "3"]
    status, session = await call.json("GET", f"/sessions/{session_id}")
    assert status == 200
    assert session["state"].startswith("http://test/acp/resources/")
    assert len(session["history"]) == 6


async def test_a_run_that_names_no_session_leaves_no_history(make_call: Any) -> None:
    call = make_call(echo_registry())
    status, run = await call.run("echo")
    assert status == 200
    uuid.UUID(run["session_id"])  # a run always has a session id...
    status, error = await call.json("GET", f"/sessions/{run['session_id']}")
    assert (status, error["code"]) == (404, "not_found")  # ...but only a named session keeps history
    store = call.service.store
    assert isinstance(store, MemoryStore)
    assert not store._resources


async def test_finished_runs_read_back_the_same_once_packed(make_call: Any) -> None:
    call = make_call(echo_registry())
    runs = []
    for index in range(400):  # more than the newest finished runs kept unpacked, in several batches
        status, run = await call.run("echo", f"text {index}")
        assert status == 200
        runs.append(run)
    for index in (0, 1, 31, 32, 100, 399):
        run = runs[index]
        status, again = await call.json("GET", f"/runs/{run['run_id']}")
        assert (status, again) == (200, run)
        status, listed = await call.json("GET", f"/runs/{run['run_id']}/events")
        assert status == 200
        types = [event["type"] for event in listed["events"]]
        assert types == [
            "run.created",
            "run.in-progress",
            "message.created",
            "message.part",
            "message.completed",
            "run.completed",
        ]
        assert listed["events"][-1]["run"] == run
        assert listed["events"][3]["part"]["content"] == f"text {index}"


class FlakyStore(MemoryStore):
    """A store that is unreachable for the first ``outages`` attempts at the named operation."""

    def __init__(self, operation: str, outages: int) -> None:
        super().__init__()
        self.operation, self.outages = operation, outages

    def _maybe_down(self, operation: str) -> None:
        if operation == self.operation and self.outages > 0:
            self.outages -= 1
            raise StoreUnavailable("connection refused")

    async def transition(self, run_id: Any, changes: Any, *, expect: Any, events: Any) -> Any:
        if events and events[0].type == "run.completed":
            self._maybe_down("complete")
        if events and events[0].type in ("run.completed", "run.failed", "run.cancelled"):
            self._maybe_down("finish")
        return await super().transition(run_id, changes, expect=expect, events=events)

    async def append_events(self, run_id: Any, events: Any) -> None:
        if events[0].type == "message.created":
            self._maybe_down("message")
        await super().append_events(run_id, events)


async def test_a_run_waits_for_the_store_to_record_its_outcome(caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore("complete", outages=3)
    call = Call(ACPService(echo_registry(), store=store))
    status, run = await call.run("echo", "kept")
    assert (status, run["status"]) == (200, "completed")
    assert [m["parts"][0]["content"] for m in run["output"]] == ["kept"]
    assert store.outages == 0
    assert "could not record that it completed" in caplog.text
    await call.service.aclose()


async def test_a_store_outage_during_a_run_fails_it_with_a_reason() -> None:
    call = Call(ACPService(echo_registry(), store=FlakyStore("message", outages=1)))
    status, run = await call.run("echo")
    assert (status, run["status"]) == (200, "failed")
    assert run["error"] == {"code": "server_error", "message": "the store became unreachable during the run"}
    await call.service.aclose()


async def test_a_run_that_cannot_record_its_outcome_is_failed_not_left_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("acp_adapters.core.execution._FINISH_RETRY_FOR", 0.1)  # 3 attempts per outcome
    completing_fails = Call(ACPService(echo_registry(), store=FlakyStore("complete", outages=1000)))
    status, run = await completing_fails.run("echo")
    assert (status, run["status"]) == (200, "failed")
    assert run["error"]["message"] == "the store became unreachable during the run"
    await completing_fails.service.aclose()

    every_outcome_fails = Call(ACPService(echo_registry(), store=FlakyStore("finish", outages=6)))
    status, run = await every_outcome_fails.run("echo")
    assert (status, run["status"]) == (200, "failed")
    assert run["error"]["message"] == "the run stopped unexpectedly"
    await every_outcome_fails.service.aclose()


async def test_a_finished_run_leaves_no_reference_cycles_behind(make_call: Any) -> None:
    """Each run's objects are freed when it ends, not left for the garbage collector (whose passes
    would then grow with the traffic)."""
    call = make_call(echo_registry())
    await call.run("echo")
    gc.collect()
    gc.disable()
    try:
        for _ in range(50):
            status, _ = await call.run("echo")
            assert status == 200
        unreachable = gc.collect()
    finally:
        gc.enable()
    assert unreachable < 50  # fewer than one per run (there were 30 per run)


async def test_a_context_kept_after_its_run_cannot_yield(make_call: Any) -> None:
    kept: list[Context] = []
    agents = AgentRegistry()

    @agents.agent()
    async def keeper(input: list[Message], context: Context) -> AsyncIterator[str]:
        kept.append(context)
        await context.yield_async("from nested code")
        yield "done"

    call = make_call(agents)
    _, run = await call.run("keeper")
    assert [part["content"] for part in run["output"][0]["parts"]] == ["from nested code", "done"]
    gc.collect()
    with pytest.raises(RuntimeError, match="has ended"):
        await kept[0].yield_async("too late")
