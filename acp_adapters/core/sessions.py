"""Sessions: opening the session a new run names, and adding the finished run to it.

Rules this module keeps:

* A session belongs to the identity of the run that claimed it first (atomically, in the store,
  before the run does anything); anyone else naming it gets the answer a missing session gets.
* A run naming no session gets one of its own that is kept nowhere.
* A finished run adds its input, its output and the state it stored to its session; if the session
  expired meanwhile and another identity claimed its id, the run is not added (and this is logged).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from .context import SessionContext
from .errors import NotFoundError, ValidationFailed
from .models import Message, RunCreateRequest
from .resources import ResourceLoader
from .store import SessionRecord, Store

__all__ = ["open_session", "session_recorder"]

logger = logging.getLogger("acp_adapters")


async def open_session(store: Store, request: RunCreateRequest, owner: str | None) -> SessionRecord:
    """The session ``request`` names (claimed for ``owner`` if new), or a new one kept nowhere.

    Raises :class:`ValidationFailed` if ``session_id`` and ``session.id`` disagree,
    :class:`NotFoundError` if the session is another identity's.
    """
    descriptor = request.session
    if descriptor is not None and request.session_id is not None and descriptor.id != request.session_id:
        raise ValidationFailed("session_id and session.id disagree", {"fields": ["session_id", "session.id"]})
    session_id = descriptor.id if descriptor is not None else request.session_id
    if session_id is None:  # a session of its own, kept nowhere: nothing to claim
        return SessionRecord(id=uuid.uuid4(), owner=owner)
    if descriptor is None:
        record = SessionRecord(id=session_id, owner=owner)
    else:
        record = SessionRecord(
            id=session_id,
            history=[str(url) for url in descriptor.history],
            state=str(descriptor.state) if descriptor.state is not None else None,
            owner=owner,
        )
    # The first run naming a session makes it its owner's, atomically, before it does anything.
    known = await store.claim_session(record)
    if known.owner != owner:
        raise NotFoundError(f"session {session_id} not found")
    if descriptor is None or known == record:  # (a store may hand back a copy of ours)
        return known
    await store.put_session(record)  # the owner forwarded a descriptor: it replaces ours
    return record


def session_recorder(
    store: Store,
    session: SessionContext,
    loader: ResourceLoader,
    input: list[Message],
    owner: str | None,
) -> Callable[[list[Message]], Awaitable[None]]:
    """What adds a finished run's input and output, and the state it stored, to its session."""
    state_before = session.state

    async def record(output: list[Message]) -> None:
        urls = [
            await loader.store(m.__pydantic_serializer__.to_json(m, exclude_none=True), owner=owner)
            for m in (*input, *output)
        ]
        state = session.state if session.state != state_before else None
        if await store.extend_session(session.id, urls, state=state, owner=owner) is None:
            # The session expired meanwhile and another identity claimed its id.
            logger.warning("session %s belongs to another owner now: this run is not added", session.id)

    return record
