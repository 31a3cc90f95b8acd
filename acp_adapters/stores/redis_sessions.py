"""Sessions and resources in Redis (the part of :class:`RedisStore` that is not about runs).

A session is a hash (``id``, ``state``, ``owner``) and a list of history URLs, appended with ``RPUSH`` in
one script so that two runs ending at once in one session both land; a resource is a string (and its
owner another, ``:owner``). Both live ``retention`` seconds after they were last written.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from acp_adapters.core.store import SessionRecord
from acp_adapters.stores.redis_codec import pairs
from acp_adapters.stores.redis_connection import RedisConnection, milliseconds

__all__ = ["RedisSessions"]


class RedisSessions:
    """The session and resource methods of :class:`~acp_adapters.stores.redis.RedisStore`."""

    prefix: str
    retention: float
    _redis: RedisConnection

    # sessions -------------------------------------------------------------------------------------
    def _session_keys(self, session_id: uuid.UUID) -> list[str]:
        base = f"{self.prefix}session:{session_id}"
        return [base, base + ":history"]

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
        hash_key, history_key = self._session_keys(session_id)
        client = self._redis.client
        with self._redis.reachable():
            async with client.pipeline(transaction=True) as pipe:
                pipe.hgetall(hash_key)
                pipe.lrange(history_key, 0, -1)
                flat, history = await pipe.execute()
        return self._decode_session(session_id, flat, history) if flat else None

    async def put_session(self, record: SessionRecord) -> None:
        hash_key, history_key = self._session_keys(record.id)
        fields = {"id": str(record.id)}
        if record.state is not None:
            fields["state"] = record.state
        if record.owner is not None:
            fields["owner"] = record.owner
        ttl = milliseconds(self.retention)
        client = self._redis.client
        with self._redis.reachable():
            async with client.pipeline(transaction=True) as pipe:
                pipe.delete(hash_key, history_key)
                pipe.hset(hash_key, mapping=fields)  # type: ignore[arg-type]
                if record.history:
                    pipe.rpush(history_key, *record.history)
                pipe.pexpire(hash_key, ttl)
                pipe.pexpire(history_key, ttl)
                await pipe.execute()

    async def extend_session(
        self,
        session_id: uuid.UUID,
        history: Sequence[str],
        *,
        state: str | None = None,
        owner: str | None = None,
    ) -> SessionRecord:
        args = [
            milliseconds(self.retention),
            str(session_id),
            owner or "",
            "0" if state is None else "1",
            state or "",
        ]
        flat, full_history = await self._redis.script(
            "EXTEND_SESSION", self._session_keys(session_id), [*args, *history]
        )
        return self._decode_session(session_id, pairs(flat), full_history)

    # resources ------------------------------------------------------------------------------------
    async def put_resource(self, resource_id: uuid.UUID, data: bytes, *, owner: str | None = None) -> None:
        key, ttl = f"{self.prefix}resource:{resource_id}", milliseconds(self.retention)
        client = self._redis.client
        with self._redis.reachable():
            if owner is None:
                await client.set(key, data, px=ttl)
                return
            async with client.pipeline(transaction=False) as pipe:
                pipe.set(key, data, px=ttl)
                pipe.set(key + ":owner", owner, px=ttl)
                await pipe.execute()

    async def get_resource(self, resource_id: uuid.UUID) -> bytes | None:
        client = self._redis.client
        with self._redis.reachable():
            data: Any = await client.get(f"{self.prefix}resource:{resource_id}")
        return None if data is None else bytes(data)
