"""The lifecycle table's derived sets agree with each other and with ``RunStatus.is_terminal``."""

from __future__ import annotations

from acp_adapters.core.lifecycle import ACTIVE, ENDED, ENDING_EVENTS, NOT_ENDED, TRANSITIONS
from acp_adapters.core.models import RunStatus


def test_ended_and_not_ended_split_the_statuses_as_is_terminal_does() -> None:
    assert {status for status in RunStatus if status.is_terminal} == ENDED
    assert {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED} == ENDED
    assert set(RunStatus) - ENDED == NOT_ENDED
    assert RunStatus.CANCELLING in NOT_ENDED and RunStatus.CANCELLING not in ACTIVE
    assert ACTIVE < NOT_ENDED
    assert {TRANSITIONS[status].event for status in ENDED} == ENDING_EVENTS
