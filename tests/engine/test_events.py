"""Events are put together from serialised parts: the JSON must be what pydantic makes of the models."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest

from acp_adapters.core.events import RunJSON, encode_event, message_event, message_json, part_event, run_event
from acp_adapters.models import (
    Error,
    ErrorCode,
    Message,
    MessageAwaitRequest,
    MessageCompletedEvent,
    MessagePart,
    MessagePartEvent,
    Run,
    RunCompletedEvent,
    RunStatus,
)


def message(text: str) -> Message:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)  # no microseconds: a format of its own
    return Message(role="agent/x", parts=[MessagePart(content=text)], created_at=now, completed_at=now)


CHANGES: list[dict[str, Any]] = [
    {},
    {"status": RunStatus.IN_PROGRESS},
    {"status": RunStatus.AWAITING, "await_request": MessageAwaitRequest(message=message("more?"))},
    {"status": RunStatus.COMPLETED, "finished_at": datetime.now(timezone.utc)},
    {
        "status": RunStatus.FAILED,
        "error": Error(code=ErrorCode.SERVER_ERROR, message='it "broke"\n', data={"n": 1}),
        "finished_at": datetime.now(timezone.utc),
    },
    {"status": RunStatus.CANCELLED, "finished_at": datetime.now(timezone.utc), "await_request": None},
]


@pytest.mark.parametrize("changes", CHANGES)
@pytest.mark.parametrize("session", [True, False])
def test_run_json_is_what_pydantic_makes(changes: dict[str, Any], session: bool) -> None:
    run = Run(agent_name="echo", session_id=uuid.uuid4() if session else None)
    run_json = RunJSON(run)
    finished, still_open = message("done"), message("open")
    run_json.finished_message(finished, message_json(finished))
    for output in ([], [finished], [finished, still_open]):
        run.output = output
        expected = run.model_copy(update=changes)
        assert run_json.render(run, changes) == expected.model_dump_json(exclude_none=True).encode()
        event = run_json.event("run.completed", run, changes)
        assert event.data == encode_event(RunCompletedEvent(run=expected)).data
        assert event.data == run_event("run.completed", expected).data


def test_message_and_part_events_are_what_pydantic_makes() -> None:
    finished = message('a "quoted" text')
    assert (
        message_event("message.completed", message_json(finished)).data
        == encode_event(MessageCompletedEvent(message=finished)).data
    )
    part = MessagePart(content="x", metadata={"kind": "citation", "url": "http://example.com"})
    assert part_event(part).data == encode_event(MessagePartEvent(part=part)).data
    assert json.loads(part_event(part).data)["part"]["metadata"]["kind"] == "citation"
