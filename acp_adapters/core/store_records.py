"""The records a store keeps and hands back: runs, events, sessions, resources, signals.

Rules this module keeps:

* Records are plain data: a store may keep them as they are (in memory) or encode them (Redis, a
  database); the engine never relies on a record being the object the store holds.
* Owners are identities or ``None`` (anonymous), never ``""``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from .models import Run

__all__ = ["EventRecord", "ResourceRecord", "RunRecord", "SessionRecord", "Signal", "StoreUnavailable"]


class StoreUnavailable(Exception):
    """The store's backend cannot be reached; the HTTP layer answers 503 with an ACP error."""


class EventRecord(NamedTuple):
    """One event of a run's log: its type and its JSON, serialised once when it was emitted."""

    type: str
    data: bytes


@dataclass
class RunRecord:
    """A run's snapshot and who owns it (the identity the host's auth gave, or ``None``)."""

    run: Run
    owner: str | None = None


@dataclass
class SessionRecord:
    """A session as this server knows it: history and state as resource URLs."""

    id: uuid.UUID
    history: list[str] = field(default_factory=list)
    state: str | None = None
    owner: str | None = None


class ResourceRecord(NamedTuple):
    """A resource's bytes and who owns it (``None``: anyone who knows its URL may read it)."""

    data: bytes
    owner: str | None = None


@dataclass(frozen=True)
class Signal:
    """A message to the worker executing a run: cancel it, or resume it with a JSON payload."""

    kind: Literal["cancel", "resume"]
    payload: bytes = b""
