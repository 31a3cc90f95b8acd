"""OpenTelemetry: a span per request and per run, and run metrics (the ``otel`` extra).

Rules this module keeps:

* Imported only when ``Settings.telemetry`` is on (by the service, when it is made): with the setting
  off nothing here runs and ``opentelemetry`` is never imported; the core's other modules import
  neither it nor this module at import time.
* The API only (``opentelemetry-api``), never the SDK: spans and metrics go to the global tracer and
  meter providers the host configures (before or after the service is made: the API's proxies follow),
  and nowhere without one.
* A request's span is ``SERVER`` and continues the caller's W3C ``traceparent``, unless the host's
  own instrumentation has a span current already (OpenTelemetry's ASGI middleware, Django's), which
  it then nests in as ``INTERNAL``. Its name is the method and the route template (``POST
  /acp/runs``, ``GET /acp/runs/{run_id}``), never the raw path; a stream's span ends with its stream.
* A run's span starts when its agent starts, in the run's own task, and is made current there and
  never detached (the task ends with the run): the agent's code, and a sync agent's thread (anyio
  copies the context into it), run inside it, so the agent's own spans nest. Its parent is the
  request that created the run, or the trace context its job carried when the run was handed to
  another process (``RunJob.trace``, a Celery worker). It ends when the run's ending is stored.
* Never the content of messages: ids, names, statuses, error codes and counts only.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import context, metrics, propagate, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode

from .http import Request, Response, StreamResponse
from .models import RunStatus
from .sse import frames_in

if TYPE_CHECKING:
    from .run_reports import ReportedRun

__all__ = ["Telemetry", "route_template"]

_NAME = "acp_adapters"
_AGENT, _STATUS = "acp.agent.name", "acp.run.status"
#: Run durations: from a few milliseconds to the default ``max_run_duration`` (an hour).
_DURATION_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
#: A path's first segment -> the name of the parameter its second segment is.
_PARAMETERS = {
    "agents": "{name}",
    "runs": "{run_id}",
    "session": "{session_id}",
    "sessions": "{session_id}",
    "resources": "{resource_id}",
    "playground": "{asset}",
}
_FLAT = frozenset({"ping", "health", "openapi.json", "playground", "agents", "runs"})
_RUN_ACTIONS = frozenset({"cancel", "events"})

Handle = Callable[[Request], Awaitable["Response | StreamResponse"]]


def route_template(path: str) -> str | None:
    """The route a path relative to the mount is served by, as a template (``/runs/{run_id}``), or
    ``None`` for a path no route serves. (The service's routes: a test keeps the two in step.)"""
    parts = path.strip("/").split("/")
    head = parts[0]
    if len(parts) == 1:
        return f"/{head}" if head in _FLAT else None
    if len(parts) == 2 and head in _PARAMETERS:
        return f"/{head}/{_PARAMETERS[head]}"
    if len(parts) == 3 and head == "runs" and parts[2] in _RUN_ACTIONS:
        return f"/runs/{{run_id}}/{parts[2]}"
    return None


class _Meters:
    """The process's instruments, made once and shared by every service (the SDK refuses a second
    instrument of a name, with a warning, and would drop a second callback). All but the duration
    histogram are observed: they read counts kept here when metrics are collected, so a run or an event
    costs them an addition to a dict, not a measurement of the SDK's."""

    def __init__(self) -> None:
        meter = metrics.get_meter(_NAME)
        self.run_duration = meter.create_histogram(
            "acp.run.duration",
            unit="s",
            description="From a run's creation to its end, awaiting included",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        #: Runs started by agent, ended by agent and status, executing by agent; events sent on streams
        #: and streams open (the observed values).
        self.started: dict[str, int] = {}
        self.ended: dict[tuple[str, str], int] = {}
        self.active: dict[str, int] = {}
        self.events = 0
        self.streams = 0
        meter.create_observable_counter(
            "acp.runs.started",
            [self._started],
            unit="{run}",
            description="Runs whose agent started in this process",
        )
        meter.create_observable_counter(
            "acp.runs.ended",
            [self._ended],
            unit="{run}",
            description="Runs executed in this process that ended",
        )
        meter.create_observable_up_down_counter(
            "acp.runs.active", [self._active], unit="{run}", description="Runs executing in this process"
        )
        meter.create_observable_counter(
            "acp.stream.events_sent",
            [self._events],
            unit="{event}",
            description="Events sent on event streams",
        )
        meter.create_observable_up_down_counter(
            "acp.stream.subscribers", [self._streams], unit="{stream}", description="Event streams open"
        )

    # (The callbacks run in the metric reader's thread: a dict's copy, made under the GIL, is safe.)
    def _started(self, options: CallbackOptions) -> list[Observation]:
        return [Observation(count, {_AGENT: agent}) for agent, count in self.started.copy().items()]

    def _ended(self, options: CallbackOptions) -> list[Observation]:
        return [
            Observation(count, {_AGENT: agent, _STATUS: status})
            for (agent, status), count in self.ended.copy().items()
        ]

    def _active(self, options: CallbackOptions) -> list[Observation]:
        return [Observation(count, {_AGENT: agent}) for agent, count in self.active.copy().items()]

    def _events(self, options: CallbackOptions) -> list[Observation]:
        return [Observation(self.events)]

    def _streams(self, options: CallbackOptions) -> list[Observation]:
        return [Observation(self.streams)]


_meters: _Meters | None = None
_meters_made = threading.Lock()


def _process_meters() -> _Meters:
    global _meters
    with _meters_made:
        if _meters is None:
            _meters = _Meters()
        return _meters


class Telemetry:
    """The spans and instruments of one service (see the module docstring)."""

    def __init__(self) -> None:
        self._tracer = trace.get_tracer(_NAME)
        self._meters = _process_meters()
        #: The spans of the runs whose agent started here and that have not ended.
        self._runs: dict[uuid.UUID, trace.Span] = {}

    # requests -------------------------------------------------------------------------------------
    async def traced(self, request: Request, handle: Handle) -> Response | StreamResponse:
        """``handle(request)`` inside the request's span."""
        method = request.method.upper()
        route = route_template(request.path)
        attributes: dict[str, Any] = {"http.request.method": method}
        name = method
        if route is not None:
            route = urlsplit(request.base_url).path.rstrip("/") + route
            attributes["http.route"] = route
            name = f"{method} {route}"
        parent = context.get_current()
        kind = SpanKind.INTERNAL
        if not trace.get_current_span(parent).get_span_context().is_valid:
            parent, kind = propagate.extract(request.headers), SpanKind.SERVER
        span = self._tracer.start_span(name, parent, kind, attributes)
        inside = trace.set_span_in_context(span, parent)
        token = context.attach(inside)
        try:
            response = await handle(request)
        except BaseException as exc:  # (handle answers every Exception: a cancel, a stop)
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.end()
            raise
        finally:
            context.detach(token)
        span.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:
            span.set_attribute("error.type", str(response.status))
            span.set_status(Status(StatusCode.ERROR))
        if isinstance(response, StreamResponse):
            response.body = _TracedStream(response.body, span, inside, self)
        else:
            span.end()
        return response

    # runs (told by RunReports) --------------------------------------------------------------------
    def run_started(self, execution: ReportedRun) -> None:
        """The run's agent starts, in the run's task: start its span and make it current there."""
        run = execution.run
        parent = None if execution.trace_parent is None else propagate.extract(execution.trace_parent)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": run.agent_name,
            "acp.agent.name": run.agent_name,
            "acp.run.id": str(run.run_id),
            "acp.session.id": str(run.session_id),
        }
        if execution.mode is not None:
            attributes["acp.run.mode"] = execution.mode.value
        span = self._tracer.start_span(f"invoke_agent {run.agent_name}", parent, attributes=attributes)
        context.attach(trace.set_span_in_context(span, parent))  # never detached: see the module rules
        self._runs[run.run_id] = span
        meters, agent = self._meters, run.agent_name
        meters.started[agent] = meters.started.get(agent, 0) + 1
        meters.active[agent] = meters.active.get(agent, 0) + 1

    def run_ended(self, execution: ReportedRun, seconds: float) -> None:
        """The run's ending is stored: end its span, count it."""
        run, meters = execution.run, self._meters
        outcome = (run.agent_name, run.status.value)
        meters.ended[outcome] = meters.ended.get(outcome, 0) + 1
        meters.run_duration.record(seconds, {_AGENT: outcome[0], _STATUS: outcome[1]})
        span = self._runs.pop(run.run_id, None)
        if span is None:
            return
        meters.active[run.agent_name] -= 1
        if not span.is_recording():  # (no provider: nothing to tell it)
            span.end()
            return
        span.set_attribute("acp.run.status", run.status.value)
        span.set_attribute("acp.run.events", execution.event_count)
        if execution.mode is not None:  # (known now if the run was created after its span started)
            span.set_attribute("acp.run.mode", execution.mode.value)
        if run.status is RunStatus.FAILED:
            code = run.error.code.value if run.error is not None else "server_error"
            span.set_attribute("acp.run.error.code", code)
            span.set_attribute("error.type", code)
            span.set_status(Status(StatusCode.ERROR, run.error.message if run.error is not None else None))
        span.end()

    def carrier(self) -> dict[str, str]:
        """The current trace context as W3C headers (``traceparent``...), for a run handed over."""
        headers: dict[str, str] = {}
        propagate.inject(headers)
        return headers

    # streams --------------------------------------------------------------------------------------
    def stream_opened(self) -> None:
        self._meters.streams += 1

    def stream_closed(self) -> None:
        self._meters.streams -= 1

    def events_sent(self, count: int) -> None:
        self._meters.events += count


class _TracedStream(AsyncIterator[bytes]):
    """A stream's body inside its request's span: each step runs with the span current (a stream
    run's agent that its reader starts is that span's child); the span ends with the stream."""

    def __init__(
        self, body: AsyncIterator[bytes], span: trace.Span, inside: Any, telemetry: Telemetry
    ) -> None:
        self._body = body
        self._span = span
        self._context = inside
        self._telemetry = telemetry
        self._open = True
        telemetry.stream_opened()

    async def __anext__(self) -> bytes:
        token = context.attach(self._context)
        try:
            chunk = await self._body.__anext__()
        except BaseException:
            self._end()
            raise
        finally:
            context.detach(token)
        self._telemetry.events_sent(frames_in(chunk))
        return chunk

    async def aclose(self) -> None:
        """The client went away (or the adapter is done): close the body, end the span."""
        try:
            aclose = getattr(self._body, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            self._end()

    def _end(self) -> None:
        if self._open:
            self._open = False
            self._telemetry.stream_closed()
            self._span.end()
