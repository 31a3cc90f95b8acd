"""What this process tells of the runs it executes: each agent's manifest ``status``, a log line per
finished run, and progress lines for long runs.

Rules this module keeps:

* Kept per service and process, in memory: a deployment of several workers has a status per worker
  (each the figures of the runs that worker executed), and a restart starts from nothing. Nothing is
  written to the store: reading a manifest costs no round trip.
* A run counts once, when its execution records its ending (:meth:`RunReports.ended`, called by the
  execution right after the store took the ending). Completed and failed runs make the figures;
  cancelled runs are counted apart and make none (a client's choice says nothing of the agent), nor do
  runs failed as lost by another worker (they executed elsewhere).
* Never the content of a message: ids, the agent's name, the owner, counts and times only.
* With ``Settings.telemetry`` on, the same two moments start and end the run's OpenTelemetry span and
  count it (:attr:`RunReports.telemetry`, :mod:`.telemetry`); off, that costs one ``is None``.
* The line of a finished run is at INFO on the ``acp_adapters`` logger, its fields both in the message
  (for a reader) and as ``extra`` attributes of the record (for a structured handler); it is built only
  when a handler would take it. Progress lines are at DEBUG, every ``progress_log_interval`` seconds of
  a run still going, and cost nothing (no timer) unless DEBUG is on when the run starts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from typing import Any, Protocol

from .context import Context
from .models import AgentStatus, Run, RunMode, RunStatus, utc_now

__all__ = ["ReportedRun", "RunReports", "RunTelemetry"]

logger = logging.getLogger("acp_adapters")


class ReportedRun(Protocol):
    """What a report reads of a run's execution."""

    run: Run
    #: The mode of the request that created the run (``None``: not known here).
    mode: RunMode | None
    #: Events in the run's log so far.
    event_count: int
    #: Whether the engine is done with the execution (its progress lines stop).
    released: bool
    #: The W3C trace context (``traceparent``...) of the request that created the run in another
    #: process, carried by its job; ``None`` when it was created here.
    trace_parent: dict[str, str] | None

    @property
    def context(self) -> Context:
        """The agent's context: the owner, the tokens it counted."""
        ...


class RunTelemetry(Protocol):
    """What reports tell telemetry (:class:`~acp_adapters.core.telemetry.Telemetry`)."""

    def run_started(self, execution: ReportedRun) -> None:
        """The run's agent starts (in the run's task)."""
        ...

    def run_ended(self, execution: ReportedRun, seconds: float) -> None:
        """The run's ending is stored; ``seconds`` from its creation."""
        ...

    def carrier(self) -> dict[str, str]:
        """The current trace context as W3C headers, for a run handed to another process."""
        ...


@dataclasses.dataclass
class _Tally:
    """One agent's finished runs."""

    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    #: Seconds of the completed and failed runs together.
    seconds: float = 0.0
    #: Tokens of the completed and failed runs that counted any, and how many runs those are.
    tokens: int = 0
    counted_tokens: int = 0

    def status(self) -> AgentStatus | None:
        runs = self.completed + self.failed
        if not runs:
            return None
        return AgentStatus(
            avg_run_tokens=round(self.tokens / self.counted_tokens, 1) if self.counted_tokens else None,
            avg_run_time_seconds=round(self.seconds / runs, 6),
            success_rate=round(100 * self.completed / runs, 2),
        )


class RunReports:
    """The reports of one engine's runs (see the module docstring). Used on the engine's loop only."""

    def __init__(self) -> None:
        self._tallies: dict[str, _Tally] = {}
        self._progress: dict[uuid.UUID, asyncio.TimerHandle] = {}
        #: Spans and metrics of the runs (set by the service when ``Settings.telemetry`` is on).
        self.telemetry: RunTelemetry | None = None

    def status(self, agent_name: str) -> AgentStatus | None:
        """The agent's manifest ``status``; ``None`` before any of its runs completed or failed here."""
        tally = self._tallies.get(agent_name)
        return tally.status() if tally is not None else None

    def started(self, execution: ReportedRun, interval: float) -> None:
        """The run's agent starts (in the run's task): its span, and its progress logged every
        ``interval`` seconds if DEBUG is on."""
        if self.telemetry is not None:
            self.telemetry.run_started(execution)
        if not logger.isEnabledFor(logging.DEBUG):
            return
        loop = asyncio.get_running_loop()
        run_id = execution.run.run_id

        def tick() -> None:
            if execution.released or execution.run.status.is_terminal:
                self._progress.pop(run_id, None)
                return
            fields = _fields(execution)
            logger.debug(
                "run %s of agent %s (%s): %s for %.1f s, %d events so far",
                *(fields[name] for name in ("run_id", "agent_name", "mode", "status", "duration_seconds")),
                fields["events"],
                extra=fields,
            )
            self._progress[run_id] = loop.call_later(interval, tick)

        self._progress[run_id] = loop.call_later(interval, tick)

    def trace_carrier(self) -> dict[str, str] | None:
        """What a run handed to another process carries of the current trace (``None``: no telemetry)."""
        return self.telemetry.carrier() if self.telemetry is not None else None

    def ended(self, execution: ReportedRun) -> None:
        """The run's ending is stored: count it, log it."""
        handle = self._progress.pop(execution.run.run_id, None)
        if handle is not None:
            handle.cancel()
        run = execution.run
        tally = self._tallies.setdefault(run.agent_name, _Tally())
        seconds = _seconds(run)
        if run.status is RunStatus.CANCELLED:
            tally.cancelled += 1
        else:
            if run.status is RunStatus.COMPLETED:
                tally.completed += 1
            else:
                tally.failed += 1
            tally.seconds += seconds
            tokens = execution.context.tokens
            if tokens is not None:
                tally.tokens += tokens
                tally.counted_tokens += 1
        if self.telemetry is not None:
            self.telemetry.run_ended(execution, seconds)
        if logger.isEnabledFor(logging.INFO):
            fields = _fields(execution)
            outcome = run.status.value
            if fields["error_code"] is not None:
                outcome += f" ({fields['error_code']})"
            logger.info(
                "run %s of agent %s (%s, owner %s) %s in %.3f s, %d events",
                fields["run_id"],
                fields["agent_name"],
                fields["mode"],
                fields["owner"],
                outcome,
                seconds,
                fields["events"],
                extra=fields,
            )


def _seconds(run: Run) -> float:
    """From the run's creation to its end (awaiting included), or to now if it goes on."""
    return max(0.0, ((run.finished_at or utc_now()) - run.created_at).total_seconds())


def _fields(execution: ReportedRun) -> dict[str, Any]:
    """The ``extra`` attributes of a run's log records."""
    run = execution.run
    return {
        "run_id": str(run.run_id),
        "agent_name": run.agent_name,
        "owner": execution.context.owner,
        "mode": execution.mode.value if execution.mode is not None else None,
        "status": run.status.value,
        "duration_seconds": round(_seconds(run), 6),
        "events": execution.event_count,
        "error_code": run.error.code.value if run.error is not None else None,
        "tokens": execution.context.tokens,
    }
