"""The run lifecycle: which status may follow which, the event each announces, and how a run ends.

Rules this module keeps:

* :data:`TRANSITIONS` is the one statement of the lifecycle: the engine, the execution and the stores
  take their ``expect=`` sets and their stop events from it, never from a list of their own.
* A status change is stored with the event that announces it in one store step
  (``Store.transition``); ``cancelling`` announces nothing (a reader learns of it from the
  ``run.cancelled`` or ``run.failed`` that follows).
* Every ending (completed, failed, cancelled) is built by :func:`ending`, every failure's error by
  :func:`server_error`: a run fails the same way whoever fails it (the engine for a lost run, the
  execution for an agent's error, a deadline or a limit on bytes). The start of a run's agent is built
  by :func:`starting`, whether it is stored with the run's creation or after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .events import RunJSON
from .models import Error, ErrorCode, Run, RunStatus, utc_now
from .store import EventRecord

__all__ = [
    "ACTIVE",
    "ENDED",
    "ENDING_EVENTS",
    "NOT_ENDED",
    "STOP_EVENTS",
    "TRANSITIONS",
    "Ending",
    "Move",
    "Transition",
    "ending",
    "may_become",
    "server_error",
    "starting",
]


class Transition(NamedTuple):
    """What a status allows: the statuses a run in it may move to, and the event that announces a
    move *into* it (``None``: none)."""

    to: frozenset[RunStatus]
    event: str | None


_S = RunStatus
#: The statuses that end a run, as :attr:`RunStatus.is_terminal` states them (a test checks that the
#: table below allows them no move, and every other status some).
_ENDS = frozenset(status for status in RunStatus if status.is_terminal)

#: The lifecycle. A run is created ``created``; it ends in a status that allows no move.
#: ``cancelling`` may still end ``failed``: a limit, a deadline or a lost worker fails a run a client
#: was cancelling (an agent's own error does not: see :func:`may_become`'s callers).
TRANSITIONS: Mapping[RunStatus, Transition] = {
    _S.CREATED: Transition(frozenset({_S.IN_PROGRESS, _S.CANCELLING, *_ENDS}), "run.created"),
    _S.IN_PROGRESS: Transition(frozenset({_S.AWAITING, _S.CANCELLING, *_ENDS}), "run.in-progress"),
    _S.AWAITING: Transition(frozenset({_S.IN_PROGRESS, _S.CANCELLING, *_ENDS}), "run.awaiting"),
    _S.CANCELLING: Transition(frozenset({_S.CANCELLED, _S.FAILED}), None),
    _S.COMPLETED: Transition(frozenset(), "run.completed"),
    _S.FAILED: Transition(frozenset(), "run.failed"),
    _S.CANCELLED: Transition(frozenset(), "run.cancelled"),
}


def may_become(status: RunStatus) -> frozenset[RunStatus]:
    """The statuses from which a run may move to ``status`` (the ``expect=`` of that move)."""
    return _SOURCES[status]


_SOURCES = {
    target: frozenset(source for source, step in TRANSITIONS.items() if target in step.to)
    for target in RunStatus
}

#: The statuses of a run that has not stopped and is not stopping: those a cancel may leave.
ACTIVE = may_become(RunStatus.CANCELLING)
#: The statuses a run ends in (they allow no move): what a store keeps ``run_retention`` seconds.
ENDED = frozenset(status for status, step in TRANSITIONS.items() if not step.to)
#: The statuses of a run that has not ended (``cancelling`` included): what a lease keeps alive.
NOT_ENDED = frozenset(TRANSITIONS) - ENDED
#: The events that end a run.
ENDING_EVENTS = frozenset(step.event for step in TRANSITIONS.values() if not step.to and step.event)
#: After these events a reader stops: the run ended, or it waits for a client.
STOP_EVENTS = ENDING_EVENTS | {"run.awaiting"}


class Move(NamedTuple):
    """The changes that move a run to a status and the event that announces it, to store in one step."""

    changes: dict[str, Any]
    event: EventRecord


#: A move that ends a run (what :func:`ending` builds).
Ending = Move


def starting(run: Run, run_json: RunJSON | None = None) -> Move:
    """The move of a run whose agent starts now into ``in-progress``, announced by ``run.in-progress``.

    The engine stores it with the creation of a run it executes at once (one store step for both,
    ``Store.create_and_transition``); ``run_json`` is the run's JSON kept by its execution.
    """
    assert _S.IN_PROGRESS in TRANSITIONS[run.status].to, f"a {run.status.value} run does not start"
    changes: dict[str, Any] = {"status": _S.IN_PROGRESS}
    kind = TRANSITIONS[_S.IN_PROGRESS].event
    assert kind is not None
    return Move(changes, (run_json or RunJSON(run)).event(kind, run, changes))


def ending(
    run: Run,
    status: RunStatus,
    error: Error | None = None,
    *,
    run_json: RunJSON | None = None,
    with_output: bool = False,
) -> Ending:
    """End ``run`` in ``status`` (completed, failed or cancelled) with ``error``.

    ``with_output`` writes the run's output with the ending (the execution's copy is the newest);
    ``run_json`` is the run's JSON kept by its execution (by default made from ``run``).
    """
    step = TRANSITIONS[status]
    assert not step.to and step.event is not None, f"{status.value} does not end a run"
    changes: dict[str, Any] = {"status": status, "finished_at": utc_now(), "await_request": None}
    if with_output:
        changes["output"] = run.output
    changes["error"] = error
    event = (run_json or RunJSON(run)).event(step.event, run, changes)
    return Ending(changes, event)


def server_error(message: str, reason: str | None = None) -> Error:
    """The error a run fails with when the server stops it (``reason``: the limit, as ``data.reason``)."""
    return Error(
        code=ErrorCode.SERVER_ERROR, message=message, data={"reason": reason} if reason is not None else None
    )
