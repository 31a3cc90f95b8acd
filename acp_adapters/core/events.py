"""Events as they go on the wire: each serialised once, when it is emitted, to the JSON clients get.

The JSON is put together from the serialised run, message or part rather than by building an event
model first: it is the same JSON (``{"type": ..., <field>: ...}``, ``None`` fields left out, as
the spec wants), made without validating again what the server itself built.
"""

from __future__ import annotations

from pydantic import BaseModel

from .models import Message, MessagePart, Run
from .store import EventRecord

__all__ = ["STOP_EVENTS", "encode_event", "message_event", "part_event", "run_event"]

#: After these events a reader stops: the run ended, or it waits for a client.
STOP_EVENTS = frozenset({"run.completed", "run.failed", "run.cancelled", "run.awaiting"})


def encode_event(event: BaseModel) -> EventRecord:
    """Serialise an event model (one whose ``type`` field names it)."""
    data = event.__pydantic_serializer__.to_json(event, exclude_none=True)
    return EventRecord(getattr(event, "type"), data)  # noqa: B009 - every event model has a type


def run_event(kind: str, run: Run) -> EventRecord:
    """A ``run.*`` event carrying ``run``."""
    body = run.__pydantic_serializer__.to_json(run, exclude_none=True)
    return EventRecord(kind, b'{"type":"' + kind.encode() + b'","run":' + body + b"}")


def message_event(kind: str, message: Message) -> EventRecord:
    """A ``message.created`` or ``message.completed`` event carrying ``message``."""
    body = message.__pydantic_serializer__.to_json(message, exclude_none=True)
    return EventRecord(kind, b'{"type":"' + kind.encode() + b'","message":' + body + b"}")


def part_event(part: MessagePart) -> EventRecord:
    """A ``message.part`` event."""
    body = part.__pydantic_serializer__.to_json(part, exclude_none=True)
    return EventRecord("message.part", b'{"type":"message.part","part":' + body + b"}")
