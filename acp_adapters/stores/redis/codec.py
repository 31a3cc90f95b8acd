"""How the Redis store lays out runs, events and signals in Redis values."""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import TypeAdapter

from acp_adapters.core.models import Run, RunStatus
from acp_adapters.core.process import worker_name
from acp_adapters.core.store import EventRecord, RunRecord, Signal

__all__ = [
    "OWNER_FIELD",
    "WORKER_FIELD",
    "decode_events",
    "decode_run",
    "decode_script_events",
    "decode_signal",
    "decode_snapshot",
    "decode_status",
    "encode_run_fields",
    "encode_signal",
    "encode_status",
    "pack_events",
    "pairs",
    "worker_name",
]

#: The hash fields of a run's owner and of the worker executing it (``host:pid``, for operators and
#: tests); not ``Run`` fields (``~``), so they cannot clash with one.
OWNER_FIELD = "~owner"
WORKER_FIELD = "~worker"
_OWNER = OWNER_FIELD.encode()


def _field_adapter(name: str) -> TypeAdapter[Any]:
    field = Run.model_fields[name]
    annotation: Any = field.annotation
    if not field.metadata:
        return TypeAdapter(annotation)
    annotated: Any = Annotated  # the field's type with its serializer (the timestamps' "Z")
    return TypeAdapter(annotated[tuple([annotation, *field.metadata])])


#: One serializer per ``Run`` field (what ``Run`` itself would write for it, as JSON).
_FIELD_ADAPTERS: dict[str, TypeAdapter[Any]] = {name: _field_adapter(name) for name in Run.model_fields}


def encode_run_fields(values: Mapping[str, Any]) -> list[str | bytes]:
    """``Run`` fields as hash fields and values, flat, one JSON value each."""
    flat: list[str | bytes] = []
    for name, value in values.items():
        adapter = _FIELD_ADAPTERS.get(name)
        if adapter is None:
            raise ValueError(f"not a field of a run: {name}")
        flat += [name, adapter.dump_json(value, warnings=False)]
    return flat


def encode_status(status: Any) -> str:
    """A status as its hash field holds it (what ``UPDATE_RUN`` compares)."""
    return json.dumps(getattr(status, "value", status))


def decode_status(raw: bytes) -> RunStatus:
    """The inverse of :func:`encode_status`."""
    return RunStatus(json.loads(raw))


def pairs(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    """A hash as a Lua script returns it (a flat list), as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=False))


def decode_run(fields: Mapping[bytes, bytes]) -> RunRecord:
    """A run's hash as a :class:`RunRecord` (one JSON document built from the fields, validated once)."""
    owner = fields.get(_OWNER)
    members = [b'"' + name + b'":' + value for name, value in fields.items() if not name.startswith(b"~")]
    run = Run.model_validate_json(b"{" + b",".join(members) + b"}")
    return RunRecord(run=run, owner=None if owner is None else owner.decode())


def decode_snapshot(reply: Sequence[bytes | None], written: Mapping[str, Any] | None = None) -> RunRecord:
    """A run as the scripts return it (``_SNAPSHOT``: its JSON document and its owner or ``None``);
    ``written``: the fields the script left out of the document, as the caller wrote them."""
    document, owner = reply[0], reply[1] if len(reply) > 1 else None
    assert document is not None
    if written:
        run = Run.model_validate({**json.loads(document), **written})
    else:
        run = Run.model_validate_json(document)
    return RunRecord(run=run, owner=None if owner is None else owner.decode())


def decode_events(entries: Any) -> list[EventRecord]:
    """Stream entries (``[(id, {b"t": type, b"d": data}), ...]``) as event records."""
    return [EventRecord(fields[b"t"].decode(), fields[b"d"]) for _, fields in entries]


def decode_script_events(entries: Any) -> list[EventRecord]:
    """Stream entries as a script returns them (``[[id, [b"t", type, b"d", data]], ...]``)."""
    return [EventRecord(fields[1].decode(), fields[3]) for _, fields in entries]


_EVENT_HEADER = struct.Struct(">HI")


def pack_events(events: Sequence[EventRecord]) -> bytes:
    """Events as one string (what ``APPEND_EVENTS`` unpacks): per event, the lengths of its type and its
    data (big-endian, 2 and 4 bytes), then the type and the data."""
    parts: list[bytes] = []
    for event in events:
        kind = event.type.encode()
        parts += (_EVENT_HEADER.pack(len(kind), len(event.data)), kind, event.data)
    return b"".join(parts)


def encode_signal(signal: Signal) -> bytes:
    """A signal as a list item: its kind, a newline, its payload."""
    return signal.kind.encode() + b"\n" + signal.payload


def decode_signal(raw: bytes) -> Signal:
    """The inverse of :func:`encode_signal`."""
    kind, _, payload = raw.partition(b"\n")
    return Signal(kind="cancel" if kind == b"cancel" else "resume", payload=payload)
