"""Events as they go on the wire: each serialised once, when it is emitted, to the JSON clients get;
and read back (:func:`run_of_event`).

The JSON is put together from the serialised run, message or part rather than by building an event
model first: it is the same JSON (``{"type": ..., <field>: ...}``, ``None`` fields left out, as
the spec wants), made without validating again what the server itself built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_json

from .models import Message, MessagePart, Run, RunStatus
from .store import EventRecord

__all__ = [
    "RunJSON",
    "encode_event",
    "message_event",
    "message_json",
    "part_event",
    "run_event",
    "run_of_event",
]


def encode_event(event: BaseModel) -> EventRecord:
    """Serialise an event model (one whose ``type`` field names it)."""
    data = event.__pydantic_serializer__.to_json(event, exclude_none=True)
    return EventRecord(getattr(event, "type"), data)  # noqa: B009 - every event model has a type


def run_event(kind: str, run: Run) -> EventRecord:
    """A ``run.*`` event carrying ``run``."""
    body = run.__pydantic_serializer__.to_json(run, exclude_none=True)
    return EventRecord(kind, b'{"type":"' + kind.encode() + b'","run":' + body + b"}")


def run_of_event(event: EventRecord) -> bytes:
    """The run JSON inside a ``run.*`` event (``{"type":"run.x","run":{...}}``), without re-serialising."""
    start = event.data.index(b'"run":') + 6
    return event.data[start:-1]


def message_json(message: Message) -> bytes:
    """A message as JSON (what ``message.*`` events and the run's output carry)."""
    return message.__pydantic_serializer__.to_json(message, exclude_none=True)


def message_event(kind: str, message_data: bytes) -> EventRecord:
    """A ``message.created`` or ``message.completed`` event carrying a message's JSON."""
    return EventRecord(kind, b'{"type":"' + kind.encode() + b'","message":' + message_data + b"}")


def part_event(part: MessagePart) -> EventRecord:
    """A ``message.part`` event."""
    body = part.__pydantic_serializer__.to_json(part, exclude_none=True)
    return EventRecord("message.part", b'{"type":"message.part","part":' + body + b"}")


class RunJSON:
    """One run's JSON, made again at each of its transitions from parts serialised once: its ids and
    creation time, and each finished output message (the run carries its whole output every time).

    It is byte for byte what pydantic makes of the run (``exclude_none``), which a test checks.
    """

    __slots__ = ("_created", "_head", "_messages")

    def __init__(self, run: Run) -> None:
        head = b'{"agent_name":' + to_json(run.agent_name)
        if run.session_id is not None:
            head += b',"session_id":"' + str(run.session_id).encode() + b'"'
        self._head = head + b',"run_id":"' + str(run.run_id).encode() + b'","status":"'
        self._created = b',"created_at":' + to_json(run.created_at)
        self._messages: list[tuple[Message, bytes]] = []

    def finished_message(self, message: Message, data: bytes) -> None:
        """Remember the JSON of an output message that will not change any more."""
        self._messages.append((message, data))

    def event(self, kind: str, run: Run, changes: Mapping[str, Any] | None = None) -> EventRecord:
        """The ``run.*`` event ``kind`` carrying ``run`` with ``changes`` applied."""
        return EventRecord(
            kind, b'{"type":"' + kind.encode() + b'","run":' + self.render(run, changes) + b"}"
        )

    def render(self, run: Run, changes: Mapping[str, Any] | None = None) -> bytes:
        """``run`` with ``changes`` applied, as JSON."""
        fields = run.__dict__ if not changes else {**run.__dict__, **changes}
        parts = [self._head, _STATUS_JSON[fields["status"]], b'"']
        if fields["await_request"] is not None:
            parts += (b',"await_request":', _model_json(fields["await_request"]))
        parts += (b',"output":[', self._output(fields["output"]), b"]")
        if fields["error"] is not None:
            parts += (b',"error":', _model_json(fields["error"]))
        parts.append(self._created)
        if fields["finished_at"] is not None:
            parts += (b',"finished_at":', to_json(fields["finished_at"]))
        parts.append(b"}")
        return b"".join(parts)

    def _output(self, output: list[Message]) -> bytes:
        known = self._messages
        jsons = [
            known[index][1] if index < len(known) and known[index][0] is message else _model_json(message)
            for index, message in enumerate(output)
        ]
        return b",".join(jsons)


_STATUS_JSON = {status: status.value.encode() for status in RunStatus}


def _model_json(model: BaseModel) -> bytes:
    return model.__pydantic_serializer__.to_json(model, exclude_none=True)
