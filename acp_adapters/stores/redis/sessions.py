"""Sessions, resources and idempotency keys in Redis (the part of :class:`RedisStore` not about runs).

A session is a hash (``id``, ``state``, ``owner``: no ``owner`` field when it has none) and a list of
history URLs, appended with ``RPUSH`` in one script so that two runs ending at once in one session both
land; a resource is a string (and its owner another, ``:owner``); an idempotency key a string. Each is
written by one script that also counts it against ``max_retained_bytes`` (see ``.retention``),
and lives ``retention`` seconds after it was last written (a key, the ``ttl`` it was claimed for).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from acp_adapters.core.store import ResourceRecord, SessionRecord

from .codec import pairs
from .connection import milliseconds
from .retention import RedisRetention

__all__ = ["RedisSessions"]


def _optional(value: str | None) -> list[str]:
    """An optional value as two script arguments: whether it is given ("1"/"0"), and it."""
    return ["0", ""] if value is None else ["1", value]


class RedisSessions(RedisRetention):
    """The session, resource and key methods of :class:`~acp_adapters.stores.redis.RedisStore`."""

    # sessions -------------------------------------------------------------------------------------
    def _session_keys(self, session_id: uuid.UUID) -> list[str]:
        base = f"{self.prefix}session:{session_id}"
        return [base, base + ":history", *self._book_keys()]

    def _session_args(
        self, session_id: uuid.UUID, owner: str | None, state: str | None, history: Sequence[str]
    ) -> list[Any]:
        return [
            *self._book_args(),
            milliseconds(self.retention),
            str(session_id),
            *_optional(owner),
            *_optional(state),
            *history,
        ]

    @staticmethod
    def _decode_session(
        session_id: uuid.UUID, fields: Mapping[bytes, bytes], history: Sequence[bytes]
    ) -> SessionRecord:
        state, owner = fields.get(b"state"), fields.get(b"owner")
        return SessionRecord(
            id=session_id,
            history=[url.decode() for url in history],
            state=None if state is None else state.decode(),
            owner=None if owner is None else owner.decode(),
        )

    async def get_session(self, session_id: uuid.UUID) -> SessionRecord | None:
        hash_key, history_key = self._session_keys(session_id)[:2]
        client = self._redis.client
        with self._redis.reachable():
            async with client.pipeline(transaction=True) as pipe:
                pipe.hgetall(hash_key)
                pipe.lrange(history_key, 0, -1)
                flat, history = await pipe.execute()
        return self._decode_session(session_id, flat, history) if flat else None

    async def claim_session(self, record: SessionRecord) -> SessionRecord:
        args = self._session_args(record.id, record.owner, record.state, record.history)
        known = await self._redis.script("CLAIM_SESSION", self._session_keys(record.id), args)
        if known is None:  # created as ``record``
            return record
        flat, history = known
        return self._decode_session(record.id, pairs(flat), history)

    async def put_session(self, record: SessionRecord) -> None:
        args = self._session_args(record.id, record.owner, record.state, record.history)
        await self._redis.script("PUT_SESSION", self._session_keys(record.id), args)

    async def extend_session(
        self,
        session_id: uuid.UUID,
        history: Sequence[str],
        *,
        state: str | None = None,
        owner: str | None = None,
    ) -> SessionRecord | None:
        args = self._session_args(session_id, owner, state, history)
        result = await self._redis.script("EXTEND_SESSION", self._session_keys(session_id), args)
        if result is None:  # another owner's
            return None
        flat, full_history = result
        return self._decode_session(session_id, pairs(flat), full_history)

    # resources ------------------------------------------------------------------------------------
    def _resource_key(self, resource_id: uuid.UUID) -> str:
        return f"{self.prefix}resource:{resource_id}"

    async def put_resource(self, resource_id: uuid.UUID, data: bytes, *, owner: str | None = None) -> None:
        key = self._resource_key(resource_id)
        args = [*self._book_args(), milliseconds(self.retention), str(resource_id), data, *_optional(owner)]
        await self._redis.script("PUT_RESOURCE", [key, key + ":owner", *self._book_keys()], args)

    async def get_resource(self, resource_id: uuid.UUID) -> ResourceRecord | None:
        key = self._resource_key(resource_id)
        with self._redis.reachable():
            values: Any = await self._redis.client.mget(key, key + ":owner")
        data, owner = values
        if data is None:
            return None
        return ResourceRecord(bytes(data), None if owner is None else owner.decode())

    # keys -----------------------------------------------------------------------------------------
    async def claim_key(self, key: str, value: bytes, ttl: float) -> bytes | None:
        item = "key:" + key
        args = [*self._book_args(), milliseconds(ttl), item, value]
        held = await self._redis.script("CLAIM_KEY", [self.prefix + item, *self._book_keys()], args)
        return None if held is None else bytes(held)
