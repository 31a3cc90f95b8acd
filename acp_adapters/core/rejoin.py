"""Rejoining a run's event stream: ``GET /runs/{id}/events`` as server-sent events.

An extension of ACP (the spec's ``GET /runs/{id}/events`` answers a JSON list, and still does): a client
that asks for ``text/event-stream`` gets the run's events live, from after the last one it has seen,
with the ids, heartbeats and end of a ``POST /runs`` stream. Official clients send no such ``Accept``
and see no change.

Rules this module keeps:

* The stream is chosen only when the client prefers ``text/event-stream`` to JSON (RFC 9110's
  ``Accept``, with ``q`` values; at the same ``q``, the type named more exactly); ``*/*``,
  ``application/json``, both named alike, or no ``Accept`` get the JSON list.
* An id is an event's index in the run's log. The last one seen comes from ``Last-Event-ID`` (what a
  browser's ``EventSource`` sends when it reconnects, so it wins over the query), else ``?after=N``;
  the stream starts at the next index. Neither (or an empty ``Last-Event-ID``, which the SSE standard
  reads as no id): from the first event.
* A bad id (not a whole number, or not an id this run's log has given yet) is a 422 before any
  stream starts, naming the header or parameter in ``data.fields``.
* A run that has ended, and whose every event the client has, answers 204 (an ``EventSource`` stops
  reconnecting on a 204; a stream that only closed would make it reconnect forever). The run is read
  before its events are counted: a status is stored with the event that announces it, after the events
  before it, so a run seen ended has its whole log counted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qs

from .errors import ValidationFailed
from .http import Request
from .responses import int_param
from .store import RunRecord, Store

__all__ = ["rejoin_start", "wants_event_stream"]

_EVENT_STREAM = ("text", "event-stream")
_JSON = ("application", "json")
_QUALITY = re.compile(r"(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)")
#: Ids are indexes of a log: 19 digits is more than any log holds, and keeps ``int()`` cheap.
_EVENT_ID = re.compile(r"\d{1,19}")


def wants_event_stream(headers: Mapping[str, str]) -> bool:
    """Whether the ``Accept`` header prefers ``text/event-stream`` to ``application/json``.

    Each type takes the ``q`` of the most specific media range that matches it (``text/event-stream``,
    then ``text/*``, then ``*/*``); the stream needs a ``q`` above 0 and above JSON's, or the same ``q``
    from a more specific range (``text/event-stream, */*``).
    """
    accept = headers.get("accept")
    if not accept:
        return False
    stream = _quality(accept, _EVENT_STREAM)
    return stream[0] > 0 and stream > _quality(accept, _JSON)


def _quality(accept: str, media: tuple[str, str]) -> tuple[float, int]:
    """The ``q`` that ``accept`` gives ``media`` and how specific the range that gave it is (2: the
    type itself, 1: ``type/*``, 0: ``*/*``); ``(0, -1)`` when no range matches it."""
    best, specificity = 0.0, -1
    for item in accept.split(","):
        kind, *parameters = item.split(";")
        main, _, sub = kind.strip().lower().partition("/")
        if (main, sub) == media:
            rank = 2
        elif (main, sub) == (media[0], "*"):
            rank = 1
        elif (main, sub) == ("*", "*"):
            rank = 0
        else:
            continue
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                if _QUALITY.fullmatch(value.strip()) is None:
                    break  # a malformed q: the range is ignored
                quality = float(value)
        else:
            if rank > specificity:
                best, specificity = quality, rank
    return best, specificity


def _last_seen(request: Request) -> tuple[int, str] | None:
    """The id of the last event the client has (and where it was given), or ``None``."""
    text = request.headers.get("last-event-id", "").strip()
    if text:
        if _EVENT_ID.fullmatch(text) is None:
            raise ValidationFailed(
                "the Last-Event-ID header must be the id of an event of this run's stream, a whole number",
                {"fields": ["Last-Event-ID"]},
            )
        return int(text), "Last-Event-ID"
    after = int_param(parse_qs(request.query, keep_blank_values=True), "after", 0, None)
    return None if after is None else (after, "after")


async def rejoin_start(store: Store, record: RunRecord, request: Request) -> int | None:
    """The index the rejoined stream of ``record``'s run starts at; ``None`` when the run has ended and
    the client has all of its events. 422 for an id the run's log does not hold."""
    seen = _last_seen(request)
    if seen is None:
        return 0
    last, given_as = seen
    count = await store.count_events(record.run.run_id)  # (the run was read first: see the rules)
    if last >= count:
        raise ValidationFailed(
            f"{given_as} {last} is not an event of this run: its log holds ids 0 to {count - 1}",
            {"fields": [given_as], "events": count},
        )
    if last + 1 == count and record.run.status.is_terminal:
        return None
    return last + 1
