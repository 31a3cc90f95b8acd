"""OpenTelemetry (``Settings.telemetry``, the ``otel`` extra), read with the SDK's in-memory exporter and
metric reader: a span per request (route template, status, the caller's ``traceparent``) and per run
(agent, run id, mode, status, error code) with the agent's own spans inside it, in an async agent's
task and a sync agent's thread; through Starlette and Flask, a stream, a failed run, an awaiting run;
the trace context a handed-over run carries to the worker that executes it; the run and stream
metrics; and nothing at all (not even an import) with the setting off.

The SDK's providers are global and set once per process: this module installs them on first use, and
each test reads what happened during it (spans cleared before it, metric values compared with theirs
before it).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from acp_adapters import ACPService, AgentRegistry, Context, Settings
from acp_adapters.asgi import ACPApp
from acp_adapters.core.executors import Executor, RunJob
from acp_adapters.core.http import StreamResponse
from acp_adapters.core.service import _ROUTES
from acp_adapters.core.telemetry import route_template
from acp_adapters.flask import ACP
from acp_adapters.models import Error, ErrorCode, Message, MessageAwaitRequest, MessageAwaitResume
from tests.engine.conftest import Call
from tests.helpers import resume_body, run_body, sse_data
from tests.stores.conftest import prefix

__all__ = ["prefix"]  # (a fixture: a Redis key prefix of one test's own)

pytestmark = pytest.mark.anyio

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
PARENT_ID = 0xB7AD6B7169203331
TRACEPARENT = f"00-{TRACE_ID:032x}-{PARENT_ID:016x}-01"

EXPORTER = InMemorySpanExporter()
READER = InMemoryMetricReader()
_installed: list[bool] = []
tracer = trace.get_tracer("tests.agents")


def install_providers() -> None:
    """The SDK's providers with the in-memory exporter and reader, as this process's global ones."""
    if _installed:
        return
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[READER]))
    assert trace.get_tracer_provider() is provider, "another test set the global tracer provider first"
    _installed.append(True)


@pytest.fixture(autouse=True)
def telemetry() -> None:
    install_providers()
    EXPORTER.clear()


def registry() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    async def echo(input: list[Message], context: Context) -> AsyncIterator[Message]:
        """Echoes, inside a span of its own."""
        with tracer.start_as_current_span("echo.work"):
            await asyncio.sleep(0)
            for message in input:
                yield message

    @agents.agent(name="sync-echo")
    def sync_echo(input: list[Message]) -> str:
        """A plain function (it runs in a thread), with a span of its own."""
        with tracer.start_as_current_span("sync-echo.work"):
            return input[0].text

    @agents.agent()
    async def chunks(input: list[Message], context: Context) -> AsyncIterator[str]:
        """Three parts, for a stream."""
        for text in ("a", "b", "c"):
            yield text

    @agents.agent()
    async def failer(input: list[Message], context: Context) -> AsyncIterator[Error]:
        """Fails its run with invalid_input."""
        yield Error(code=ErrorCode.INVALID_INPUT, message="no")

    @agents.agent()
    async def awaiter(input: list[Message], context: Context) -> AsyncGenerator[Any, Any]:
        """Awaits a message, then says it."""
        resume = yield MessageAwaitRequest(message=Message(role="agent", parts=[]))
        assert isinstance(resume, MessageAwaitResume)
        yield f"got {resume.message.text}"

    return agents


# reading what was recorded -------------------------------------------------------------------------
def spans_when(ready: Callable[[list[ReadableSpan]], bool], within: float = 5.0) -> list[ReadableSpan]:
    """The finished spans, once ``ready`` says they are all there (a run's span may end a moment after
    its answer left)."""
    deadline = time.monotonic() + within
    while True:
        spans = list(EXPORTER.get_finished_spans())
        if ready(spans) or time.monotonic() > deadline:
            return spans
        time.sleep(0.01)


async def spans_soon(ready: Callable[[list[ReadableSpan]], bool], within: float = 5.0) -> list[ReadableSpan]:
    """:func:`spans_when` on the event loop (whose runs end the spans waited for)."""
    deadline = time.monotonic() + within
    while True:
        spans = list(EXPORTER.get_finished_spans())
        if ready(spans) or time.monotonic() > deadline:
            return spans
        await asyncio.sleep(0.01)


def named(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    [span] = [span for span in spans if span.name == name]
    return span


def has(*names: str) -> Callable[[list[ReadableSpan]], bool]:
    return lambda spans: all(any(span.name == name for span in spans) for name in names)


def child_of(span: ReadableSpan, parent: ReadableSpan) -> bool:
    assert span.parent is not None and parent.context is not None and span.context is not None
    return bool(
        span.parent.span_id == parent.context.span_id and span.context.trace_id == parent.context.trace_id
    )


def points(name: str) -> dict[frozenset[tuple[str, Any]], Any]:
    """The metric's data points by their attributes: a number, or a histogram's (count, sum)."""
    found: dict[frozenset[tuple[str, Any]], Any] = {}
    data = READER.get_metrics_data()
    for resource in data.resource_metrics if data is not None else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    key = frozenset((point.attributes or {}).items())
                    if isinstance(point, HistogramDataPoint):
                        found[key] = (point.count, point.sum)
                    else:
                        assert isinstance(point, NumberDataPoint)
                        found[key] = point.value
    return found


def value(name: str, default: Any = 0, **attributes: str) -> Any:
    key = frozenset((f"acp.{k.replace('_', '.')}", v) for k, v in attributes.items())
    return points(name).get(key, default)


# through the frameworks ----------------------------------------------------------------------------
@pytest.fixture
def starlette_client() -> Iterator[TestClient]:
    app = Starlette(routes=[Mount("/acp", app=ACPApp(registry(), settings=Settings(telemetry=True)))])
    with TestClient(app) as client:
        yield client


@pytest.fixture
def flask_app() -> Flask:
    app = Flask(__name__)
    ACP(app, registry(), settings=Settings(telemetry=True))
    return app


def check_sync_run(spans: list[ReadableSpan], run: dict[str, Any], agent: str, work: str) -> None:
    """The request's span continues the caller's trace; the run's is its child, the agent's the run's."""
    request = named(spans, "POST /acp/runs")
    assert request.kind is SpanKind.SERVER
    assert request.parent is not None and request.parent.is_remote
    assert (request.parent.trace_id, request.parent.span_id) == (TRACE_ID, PARENT_ID)
    assert request.attributes is not None
    assert dict(request.attributes) == {
        "http.request.method": "POST",
        "http.route": "/acp/runs",
        "http.response.status_code": 200,
    }
    run_span = named(spans, f"invoke_agent {agent}")
    assert child_of(run_span, request)
    assert run_span.attributes is not None
    assert {
        key: run_span.attributes.get(key) for key in ("acp.run.id", "acp.run.mode", "acp.run.status")
    } == {
        "acp.run.id": run["run_id"],
        "acp.run.mode": "sync",
        "acp.run.status": "completed",
    }
    assert run_span.attributes["acp.agent.name"] == run_span.attributes["gen_ai.agent.name"] == agent
    assert run_span.attributes["acp.session.id"] == run["session_id"]
    assert "acp.run.error.code" not in run_span.attributes
    assert run_span.status.status_code is StatusCode.UNSET
    assert child_of(named(spans, work), run_span)


@pytest.mark.starlette
@pytest.mark.parametrize(("agent", "work"), [("echo", "echo.work"), ("sync-echo", "sync-echo.work")])
def test_a_sync_run_through_starlette(starlette_client: TestClient, agent: str, work: str) -> None:
    response = starlette_client.post(
        "/acp/runs", json=run_body(agent, "hi"), headers={"traceparent": TRACEPARENT}
    )
    assert response.status_code == 200
    run = response.json()
    assert run["output"][0]["parts"][0]["content"] == "hi"
    check_sync_run(spans_when(has("POST /acp/runs", f"invoke_agent {agent}", work)), run, agent, work)


@pytest.mark.flask
@pytest.mark.parametrize(("agent", "work"), [("echo", "echo.work"), ("sync-echo", "sync-echo.work")])
def test_a_sync_run_through_flask(flask_app: Flask, agent: str, work: str) -> None:
    client = flask_app.test_client()
    response = client.post("/acp/runs", json=run_body(agent, "hi"), headers={"traceparent": TRACEPARENT})
    assert response.status_code == 200
    run = response.get_json()
    check_sync_run(spans_when(has("POST /acp/runs", f"invoke_agent {agent}", work)), run, agent, work)


@pytest.mark.flask
def test_a_stream_run_through_flask(flask_app: Flask) -> None:
    """The stream's body is pumped on the bridge's loop: its span ends with it, the run's is its child."""
    response = flask_app.test_client().post("/acp/runs", json=run_body("chunks", mode="stream"))
    assert response.status_code == 200
    events = sse_data(response.get_data())
    assert [event["type"] for event in events][-1] == "run.completed"
    spans = spans_when(has("POST /acp/runs", "invoke_agent chunks"))
    request, run = named(spans, "POST /acp/runs"), named(spans, "invoke_agent chunks")
    assert child_of(run, request)
    assert request.end_time is not None and run.end_time is not None and request.end_time >= run.end_time


@pytest.mark.flask
def test_inside_the_hosts_own_span_the_request_span_is_internal(flask_app: Flask) -> None:
    """A host whose instrumentation made the server span already (here by hand, in the WSGI thread):
    ours nests in it, across the bridge to the engine's loop."""
    with tracer.start_as_current_span("host", kind=SpanKind.SERVER):
        response = flask_app.test_client().post("/acp/runs", json=run_body("echo"))
    assert response.status_code == 200
    spans = spans_when(has("host", "POST /acp/runs", "invoke_agent echo"))
    host, request = named(spans, "host"), named(spans, "POST /acp/runs")
    assert request.kind is SpanKind.INTERNAL
    assert child_of(request, host)
    assert child_of(named(spans, "invoke_agent echo"), request)


@pytest.mark.starlette
def test_request_spans_are_named_by_route_template_never_by_raw_path(starlette_client: TestClient) -> None:
    run = starlette_client.post("/acp/runs", json=run_body("echo", mode="async")).json()
    run_id = run["run_id"]
    assert starlette_client.get(f"/acp/runs/{run_id}").status_code == 200
    assert starlette_client.get(f"/acp/runs/{uuid.uuid4()}/events").status_code == 404
    assert starlette_client.get("/acp/agents/echo/").status_code == 200
    assert starlette_client.get("/acp/no/such/path").status_code == 404
    names = ("GET /acp/runs/{run_id}", "GET /acp/runs/{run_id}/events", "GET /acp/agents/{name}", "GET")
    spans = spans_when(has(*names))
    assert not [span for span in spans if run_id in span.name]
    get_run = named(spans, "GET /acp/runs/{run_id}")
    assert get_run.attributes is not None and get_run.attributes["http.route"] == "/acp/runs/{run_id}"
    missing = named(spans, "GET /acp/runs/{run_id}/events")
    assert missing.attributes is not None and missing.attributes["http.response.status_code"] == 404
    assert missing.status.status_code is StatusCode.UNSET  # a 4xx is the client's, not a server error
    unrouted = named(spans, "GET")
    assert unrouted.attributes is not None and "http.route" not in unrouted.attributes
    # No caller's traceparent: the request starts a trace, and its async run's span is its child.
    create = named(spans, "POST /acp/runs")
    assert create.parent is None
    assert child_of(named(spans_when(has("invoke_agent echo")), "invoke_agent echo"), create)


def test_a_route_template_for_every_route_of_the_service() -> None:
    paths = {
        "/ping": "/ping",
        "/health": "/health",
        "/openapi.json": "/openapi.json",
        "/playground": "/playground",
        "/playground/app.js": "/playground/{asset}",
        "/agents": "/agents",
        "/agents/echo": "/agents/{name}",
        "/runs": "/runs",
        "/runs/42": "/runs/{run_id}",
        "/runs/42/": "/runs/{run_id}",
        "/runs/42/cancel": "/runs/{run_id}/cancel",
        "/runs/42/events": "/runs/{run_id}/events",
        "/session/42": "/session/{session_id}",
        "/sessions/42": "/sessions/{session_id}",
        "/resources/42": "/resources/{resource_id}",
    }
    routed = [pattern for pattern, _ in _ROUTES]
    for path, template in paths.items():
        assert route_template(path) == template, path
        assert any(pattern.fullmatch(path.rstrip("/")) for pattern in routed), path
    for pattern in routed:  # a new route needs its template (and a line above)
        assert any(pattern.fullmatch(path.rstrip("/")) for path in paths), pattern.pattern
    for path in ("/", "/nope", "/runs/42/nope", "/agents/a/b", "/runs/42/cancel/x", "/ping/x"):
        assert route_template(path) is None, path
        assert not any(pattern.fullmatch(path.rstrip("/")) for pattern in routed), path


# in the core: streams, failures, metrics -----------------------------------------------------------
@pytest.fixture
async def call() -> AsyncIterator[Call]:
    service = ACPService(registry(), settings=Settings(telemetry=True))
    try:
        yield Call(service)
    finally:
        await service.aclose()


async def test_a_stream_run_its_events_and_its_subscriber(call: Call) -> None:
    sent, subscribers = value("acp.stream.events_sent"), value("acp.stream.subscribers")
    response = await call("POST", "/runs", run_body("chunks", mode="stream"))
    assert isinstance(response, StreamResponse)
    assert value("acp.stream.subscribers") == subscribers + 1
    body = b"".join([chunk async for chunk in response.body])
    events = sse_data(body)
    assert [event["type"] for event in events][-1] == "run.completed"
    assert value("acp.stream.subscribers") == subscribers
    assert value("acp.stream.events_sent") == sent + len(events)
    spans = await spans_soon(has("POST /acp/runs", "invoke_agent chunks"))
    request, run = named(spans, "POST /acp/runs"), named(spans, "invoke_agent chunks")
    assert child_of(run, request)
    assert run.attributes is not None and run.attributes["acp.run.mode"] == "stream"
    assert run.attributes["acp.run.events"] == len(events)
    assert request.end_time is not None and run.end_time is not None
    assert request.end_time >= run.end_time  # the stream's span lasts as long as the stream


async def test_a_stream_closed_by_its_client_ends_its_span(call: Call) -> None:
    subscribers = value("acp.stream.subscribers")
    response = await call("POST", "/runs", run_body("awaiter", mode="stream"))
    assert isinstance(response, StreamResponse)
    iterator = response.body
    await iterator.__anext__()
    aclose = getattr(iterator, "aclose")  # noqa: B009 - what an adapter calls when its client goes away
    await aclose()
    assert value("acp.stream.subscribers") == subscribers
    assert named(await spans_soon(has("POST /acp/runs")), "POST /acp/runs").end_time is not None


async def test_a_failed_run_has_its_error_code(call: Call) -> None:
    failed = value("acp.runs.ended", agent_name="failer", run_status="failed")
    status, run = await call.run("failer")
    assert status == 200 and run["status"] == "failed"
    span = named(await spans_soon(has("invoke_agent failer")), "invoke_agent failer")
    assert span.attributes is not None
    assert span.attributes["acp.run.status"] == "failed"
    assert span.attributes["acp.run.error.code"] == span.attributes["error.type"] == "invalid_input"
    assert span.status.status_code is StatusCode.ERROR
    assert value("acp.runs.ended", agent_name="failer", run_status="failed") == failed + 1


async def test_run_metrics(call: Call) -> None:
    started = value("acp.runs.started", agent_name="awaiter")
    ended = value("acp.runs.ended", agent_name="awaiter", run_status="completed")
    count, total = value("acp.run.duration", (0, 0.0), agent_name="awaiter", run_status="completed")
    active = value("acp.runs.active", agent_name="awaiter")
    status, run = await call.run("awaiter")  # it awaits: still active
    assert status == 200 and run["status"] == "awaiting"
    assert value("acp.runs.started", agent_name="awaiter") == started + 1
    assert value("acp.runs.active", agent_name="awaiter") == active + 1
    await asyncio.sleep(0.05)
    status, run = await call.json("POST", f"/runs/{run['run_id']}", resume_body("yes"))
    assert status == 200 and run["status"] == "completed"
    await spans_soon(has("invoke_agent awaiter"))
    assert value("acp.runs.active", agent_name="awaiter") == active
    assert value("acp.runs.ended", agent_name="awaiter", run_status="completed") == ended + 1
    new_count, new_total = value("acp.run.duration", agent_name="awaiter", run_status="completed")
    assert new_count == count + 1
    assert 0.05 <= new_total - total < 5  # from its creation to its end, awaiting included


# runs executed elsewhere ---------------------------------------------------------------------------
class Jobs(Executor):
    """An executor that keeps its jobs, for the test to hand to a "worker" service (as Celery does)."""

    in_process = False
    name = "telemetry-test"

    def __init__(self) -> None:
        self.jobs: list[RunJob] = []

    async def submit(self, job: RunJob) -> None:
        self.jobs.append(job)


@pytest.mark.redis
async def test_a_handed_over_run_carries_its_trace_to_the_worker(prefix: str) -> None:
    from acp_adapters.stores.redis import RedisStore
    from tests.stores.backends import REDIS_URL

    agents, jobs = registry(), Jobs()
    settings = Settings(telemetry=True)
    web = ACPService(
        agents, store=RedisStore.from_url(REDIS_URL, prefix=prefix), settings=settings, executor=jobs
    )
    worker = ACPService(
        agents, store=RedisStore.from_url(REDIS_URL, prefix=prefix), settings=settings, executor=jobs
    )
    try:
        status, run = await Call(web).run("echo", "hi", mode="async")
        assert status == 202
        [job] = jobs.jobs
        assert job.mode is not None and job.mode.value == "async"
        request = named(await spans_soon(has("POST /acp/runs")), "POST /acp/runs")
        assert request.context is not None
        assert job.trace is not None
        version, trace_id, span_id, _ = job.trace["traceparent"].split("-")
        assert (version, trace_id, span_id) == (
            "00",
            f"{request.context.trace_id:032x}",
            f"{request.context.span_id:016x}",
        )
        carried = RunJob.from_json(json.loads(json.dumps(job.to_json())))  # what a task queue carries
        assert carried == job
        EXPORTER.clear()
        await worker.engine.execute(carried)
        spans = await spans_soon(has("invoke_agent echo", "echo.work"))
        run_span = named(spans, "invoke_agent echo")
        assert run_span.parent is not None and run_span.parent.is_remote
        assert (run_span.parent.trace_id, run_span.parent.span_id) == (
            request.context.trace_id,
            request.context.span_id,
        )
        assert run_span.attributes is not None
        assert run_span.attributes["acp.run.id"] == run["run_id"]
        assert run_span.attributes["acp.run.mode"] == "async"
        assert run_span.attributes["acp.run.status"] == "completed"
        assert child_of(named(spans, "echo.work"), run_span)
    finally:
        await web.aclose()
        await worker.aclose()


@pytest.mark.redis
@pytest.mark.celery
@pytest.mark.flask
def test_a_run_handed_to_celery_carries_its_trace_in_the_task(prefix: str) -> None:
    """Through the Celery executor: the task on the broker (kombu's in-memory transport) carries the
    trace context, and the task function, called with it as a worker calls it (on the process's loop),
    executes the run in a child of the request's span. (tests/celery starts real workers for the rest.)"""
    from celery import Celery

    from acp_adapters.celery import TASK_NAME, CeleryExecutor, execute_run
    from acp_adapters.stores.redis import RedisStore
    from tests.stores.backends import REDIS_URL

    celery_app = Celery("telemetry-test", broker="memory://", set_as_current=False)
    executor = CeleryExecutor(celery_app, name=f"telemetry-{uuid.uuid4().hex[:6]}", queue="telemetry")
    app = Flask(__name__)
    store = RedisStore.from_url(REDIS_URL, prefix=prefix)
    ACP(app, registry(), store=store, settings=Settings(telemetry=True), executor=executor)
    response = app.test_client().post(
        "/acp/runs", json=run_body("sync-echo", "hi", mode="async"), headers={"traceparent": TRACEPARENT}
    )
    assert response.status_code == 202
    with celery_app.connection_for_read() as connection:
        queue = connection.SimpleQueue("telemetry")
        message = queue.get(timeout=5)
        message.ack()
        queue.close()
    assert message.headers["task"] == TASK_NAME
    [job], _, _ = message.payload
    request = named(spans_when(has("POST /acp/runs")), "POST /acp/runs")
    assert request.context is not None and request.context.trace_id == TRACE_ID
    assert job["trace"]["traceparent"].split("-")[1:3] == [
        f"{TRACE_ID:032x}",
        f"{request.context.span_id:016x}",
    ]
    assert job["mode"] == "async"
    execute_run(job)  # what the worker's task does, in the worker's thread
    spans = spans_when(has("invoke_agent sync-echo", "sync-echo.work"))
    run_span = named(spans, "invoke_agent sync-echo")
    assert child_of(run_span, request)
    assert run_span.attributes is not None
    run_id = response.get_json()["run_id"]
    assert run_span.attributes["acp.run.id"] == run_id
    assert run_span.attributes["acp.run.status"] == "completed"
    assert child_of(named(spans, "sync-echo.work"), run_span)
    assert app.test_client().get(f"/acp/runs/{run_id}").get_json()["status"] == "completed"


def test_a_job_without_telemetry_carries_no_trace_and_older_jobs_still_read() -> None:
    job = RunJob.from_json(
        {
            "executor": "acp",
            "run_id": str(uuid.uuid4()),
            "agent_name": "echo",
            "input": [],
            "session": {"id": str(uuid.uuid4()), "history": [], "state": None, "record": False},
            "owner": None,
            "base_url": "http://test/acp",
        }
    )
    assert (job.mode, job.trace) == (None, None)
    assert "trace" not in job.to_json() and "mode" not in job.to_json()


# off, and without the extra ------------------------------------------------------------------------
def python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_off_by_default_and_nothing_imported_with_it_off() -> None:
    code = (
        "import asyncio, sys\n"
        "from acp_adapters import ACPService, Settings\n"
        "from acp_adapters.core.http import Request\n"
        "from example_agents import demo_registry\n"
        "service = ACPService(demo_registry())\n"
        'body = b\'{"agent_name": "echo", "input": [{"role": "user", "parts": [{"content": "hi"}]}]}\'\n'
        "async def main():\n"
        "    response = await service.handle(Request('POST', '/runs', 'http://test/acp', body=body))\n"
        "    assert response.status == 200, response.body\n"
        "    await service.aclose()\n"
        "asyncio.run(main())\n"
        "print(service.telemetry, Settings().telemetry, Settings.from_env({'ACP_TELEMETRY': '1'}).telemetry,"
        " sorted(name for name in sys.modules if name.startswith('opentelemetry')))\n"
    )
    assert python(code) == "None False True []"


def test_the_setting_without_the_extra_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # as if the otel extra were not installed\n"
        "from acp_adapters import ACPService, AgentRegistry, Settings\n"
        "try:\n"
        "    ACPService(AgentRegistry(), settings=Settings(telemetry=True))\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc)\n"
    )
    said = python(code)
    assert said.endswith('(opentelemetry is missing): pip install "acp-adapters[otel]"'), said
