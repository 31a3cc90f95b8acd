"""OwnLogs: the written events of the runs a process executes, kept for its own readers."""

from __future__ import annotations

import uuid

from acp_adapters.core.own_logs import OwnLogs
from acp_adapters.core.store import EventRecord


def event(n: int) -> EventRecord:
    return EventRecord("generic", f'{{"n":{n}}}'.encode())


def test_writes_that_follow_on_are_kept_in_order() -> None:
    logs, run = OwnLogs(), uuid.uuid4()
    logs.start(run, [event(0), event(1)])
    logs.written(run, [event(2)], 3)
    logs.written(run, [event(3), event(4)], 5)
    assert logs.get(run) == [event(n) for n in range(5)]


def test_a_write_that_does_not_follow_on_drops_the_log() -> None:
    """The count says another process wrote in between: the log no longer holds every event."""
    logs, run = OwnLogs(), uuid.uuid4()
    logs.start(run, [event(0)])
    logs.written(run, [event(2)], 3)
    assert logs.get(run) is None
    logs.written(run, [event(3)], 4)  # nothing comes back
    assert logs.get(run) is None


def test_a_run_gone_drops_the_log() -> None:
    logs, run = OwnLogs(), uuid.uuid4()
    logs.start(run, [event(0)])
    logs.written(run, [event(1)], None)
    assert logs.get(run) is None


def test_only_runs_started_here_have_a_log() -> None:
    logs, run = OwnLogs(), uuid.uuid4()
    logs.written(run, [event(0)], 1)
    assert logs.get(run) is None


def test_a_run_ended_or_handed_over_loses_its_log() -> None:
    logs, run = OwnLogs(), uuid.uuid4()
    logs.start(run, [event(0)])
    logs.forget(run)
    assert logs.get(run) is None


def test_the_logs_kept_are_bounded() -> None:
    logs = OwnLogs(limit=3)
    runs = [uuid.uuid4() for _ in range(5)]
    for run in runs:
        logs.start(run, [event(0)])
    assert len(logs) == 3
    assert [logs.get(run) is not None for run in runs] == [False, False, True, True, True]
