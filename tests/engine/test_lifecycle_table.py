"""The lifecycle's ``ENDED``/``NOT_ENDED``, which the stores read, split the statuses as
``RunStatus.is_terminal`` does (``test_lifecycle`` checks the table itself against it)."""

from __future__ import annotations

from acp_adapters.core.lifecycle import ACTIVE, ENDED, NOT_ENDED
from acp_adapters.core.models import RunStatus


def test_ended_and_not_ended_split_the_statuses_as_is_terminal_does() -> None:
    assert {status for status in RunStatus if status.is_terminal} == ENDED
    assert set(RunStatus) - ENDED == NOT_ENDED
    assert {RunStatus.CANCELLING} == NOT_ENDED - ACTIVE  # a lease keeps a cancelling run alive too
