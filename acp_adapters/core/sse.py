"""Server-sent events framing: one ``id:`` line (the event's index in the run's log) and one ``data:``
line of JSON per event."""

from __future__ import annotations

from collections.abc import Sequence

from .models import Error, ErrorEvent
from .store import EventRecord

__all__ = ["error_frame", "event_frames", "frames_in"]


def event_frames(first_index: int, events: Sequence[EventRecord]) -> bytes:
    """Frame consecutive events, the first of which has index ``first_index``, as one chunk."""
    return b"".join(
        b"id: %d\ndata: %s\n\n" % (index, event.data) for index, event in enumerate(events, first_index)
    )


def error_frame(error: Error) -> bytes:
    """An ``error`` event (no id: it is not part of the run's log)."""
    event = ErrorEvent(error=error)
    return b"data: " + event.__pydantic_serializer__.to_json(event, exclude_none=True) + b"\n\n"


def frames_in(chunk: bytes) -> int:
    """How many events (``data:`` lines) a chunk of frames holds: JSON has no raw newline, so each
    ``data:`` at the start of a line is one event (a heartbeat comment is none)."""
    return chunk.count(b"\ndata: ") + chunk.startswith(b"data: ")
