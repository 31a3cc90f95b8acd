"""``Idempotency-Key`` on ``POST /runs``: at most one run per key and owner while runs are retained.

Rules this module keeps:

* The key is taken in the store (``Store.claim_key``) with the SHA-256 of the request body and the id
  of the run to make: a repeat with the same body gets that run, one with another body a 409.
* A repeat waits a few seconds for the run its first request is still creating; a run that never
  came (its first request failed after taking the key) is a 409 asking for a new key.
* Keys are scoped by owner: the same key from two owners makes two runs.
"""

from __future__ import annotations

import hashlib
import re
import uuid

import anyio

from .errors import ConflictError, ValidationFailed
from .settings import Settings
from .store import RunRecord, Store

__all__ = ["claim_idempotency_key", "replayed_run"]

_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
#: A repeated ``Idempotency-Key`` waits up to ``_REPLAY_POLLS * _REPLAY_POLL`` seconds for the run its
#: first request is still creating.
_REPLAY_POLLS = 100
_REPLAY_POLL = 0.05


async def claim_idempotency_key(
    store: Store, settings: Settings, key: str, body: bytes, owner: str | None
) -> tuple[uuid.UUID, bool]:
    """The run id for ``key``: a new one this request creates (``True``), or the one of an earlier
    request with the same ``body`` (``False``); 422 for a malformed key, 409 if the earlier request
    had another body."""
    if _IDEMPOTENCY_KEY.fullmatch(key) is None:
        raise ValidationFailed(
            "the Idempotency-Key header must be 1 to 255 visible ASCII characters",
            {"fields": ["Idempotency-Key"]},
        )
    scope = owner or ""
    digest = hashlib.sha256(body).digest()
    run_id = uuid.uuid4()
    held = await store.claim_key(
        f"idem:{len(scope)}:{scope}:{key}", digest + run_id.bytes, settings.run_retention
    )
    if held is None:
        return run_id, True
    if held[:32] != digest:
        raise ConflictError(
            f"Idempotency-Key {key} was used with another request body",
            {"idempotency_key": key},
        )
    return uuid.UUID(bytes=held[32:48]), False


async def replayed_run(store: Store, run_id: uuid.UUID, owner: str | None) -> RunRecord:
    """The run an earlier request with the same key created (waiting for it a little); 409 if there is
    none."""
    for _ in range(_REPLAY_POLLS):
        record = await store.get_run(run_id)
        if record is not None:
            break
        await anyio.sleep(_REPLAY_POLL)  # its first request may still be creating it
    if record is None or (record.owner is not None and record.owner != owner):
        raise ConflictError(
            "no run was made for this Idempotency-Key (its first request failed or is still "
            "going): use a new key",
            {"run_id": str(run_id)},
        )
    return record
