"""The Redis store: runs, events, signals, sessions and resources shared by every worker and machine.

Rules this module keeps:

* A run is a hash of its ``Run`` fields (one JSON value each), updated in place; its events are a Redis
  Stream appended with ``XADD`` (event ``i`` has id ``0-(i+1)``) and followed with ``XREAD BLOCK``.
* Everything that may race is one Lua script (see ``redis_scripts``): compare-and-set of the status,
  appends, signals, session history.
* Every key is under ``prefix`` and has a TTL: a finished run's keys live ``retention`` seconds; a run
  still going keeps its keys alive through its lease (``renew_leases``), never by luck.
* No keyspace notifications, no ``CONFIG SET``, no ``KEYS``/``SCAN``: it runs on managed Redis and on
  any database number. (Not on Redis Cluster: a run's keys and the lease set meet in one script.)
* Every command runs under a deadline of ``timeout`` seconds; Redis unreachable or too slow raises
  :class:`StoreUnavailable` (at once when the connection is refused). redis-py reconnects by itself
  when Redis is back. The deadline is ours, not redis-py's ``socket_timeout``: with that set, redis-py
  sends through ``asyncio.wait_for``, which on Python 3.11 and older may swallow a task's
  cancellation, and a cancelled stream reader would then never stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import anyio
import redis.asyncio as aioredis
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from acp_adapters.core.models import RunStatus
from acp_adapters.core.store import EventRecord, RunRecord, SessionRecord, Signal, Store, StoreUnavailable
from acp_adapters.stores import redis_scripts
from acp_adapters.stores.redis_codec import (
    OWNER_FIELD,
    decode_events,
    decode_run,
    decode_signal,
    encode_run_fields,
    encode_signal,
    encode_status,
    pairs,
)
from acp_adapters.stores.redis_signals import SignalListener

__all__ = ["RedisStore"]

logger = logging.getLogger("acp_adapters.stores.redis")

# OSError covers the builtin TimeoutError that our deadline raises.
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisStore(Store):
    """A :class:`Store` in Redis, shared by every worker process on every machine.

    Build it with :meth:`from_url`; nothing connects until the engine starts it (or first use).
    """

    shared: ClassVar[bool] = True

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "acp:",
        retention: float = 3600.0,
        max_finished_runs: int = 10_000,
        lease_ttl: float = 10.0,
        timeout: float = 3.0,
        connect_timeout: float = 2.0,
        retries: int = 1,
        outage_grace: float = 2.0,
        **redis_options: Any,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.retention = retention
        self.max_finished_runs = max_finished_runs
        self.lease_ttl = lease_ttl
        #: Deadline of one command (seconds): past it, Redis counts as unreachable.
        self.timeout = timeout
        #: How long a blocked reader rides out Redis being unreachable before it gives up.
        self.outage_grace = outage_grace
        self._options: dict[str, Any] = {
            "socket_timeout": None,  # see the module docstring: our deadline replaces it
            "socket_connect_timeout": connect_timeout,
            "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), retries),
            **redis_options,
            "decode_responses": False,
        }
        self._client: aioredis.Redis | None = None
        self._listener: SignalListener | None = None
        self._owner_key: tuple[int, asyncio.AbstractEventLoop] | None = None
        self._channel = ""
        self._scripts: dict[str, AsyncScript] = {}

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisStore:
        """A store on the Redis at ``url`` (``redis://``, ``rediss://``, ``unix://``; the path picks the
        database). ``options`` are this class's keyword arguments, then redis-py's."""
        return cls(url, **options)

    # connection -----------------------------------------------------------------------------------
    @property
    def client(self) -> aioredis.Redis:
        """The redis-py client of this process and event loop (made on first use, remade after a fork)."""
        owner = (os.getpid(), asyncio.get_running_loop())
        if self._client is None or self._owner_key != owner:
            self._client = aioredis.Redis.from_url(self.url, **self._options)
            # Pub/sub channels are global to the server, whatever the database: name the database too.
            db = self._client.connection_pool.connection_kwargs.get("db", 0)
            self._channel = f"{self.prefix}signals:{db}"
            self._listener = SignalListener(self._client, self._channel, timeout=self.timeout)
            self._owner_key = owner
            self._scripts = {
                name: self._client.register_script(getattr(redis_scripts, name))
                for name in redis_scripts.__all__
            }
        return self._client

    async def start(self) -> None:
        with self._reachable():
            await self.client.ping()

    async def close(self) -> None:
        client, listener = self._client, self._listener
        self._client = self._listener = None
        if listener is not None:
            await listener.close()
        if client is not None:
            await client.aclose()

    @contextlib.contextmanager
    def _reachable(self, timeout: float | None = None) -> Iterator[None]:
        """Run the block's commands under a deadline; Redis unreachable raises :class:`StoreUnavailable`."""
        try:
            with anyio.fail_after(self.timeout if timeout is None else timeout):
                yield
        except _UNREACHABLE as exc:
            raise StoreUnavailable(f"the store is unreachable: {exc or type(exc).__name__}") from exc

    async def _script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        client = self.client
        with self._reachable():
            return await self._scripts[name](keys=list(keys), args=list(args), client=client)

    def _key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(part) for part in parts)

    def _run_keys(self, run_id: uuid.UUID) -> list[str]:
        """The run's hash, events stream and signals list."""
        base = self._key("run", run_id)
        return [base, base + ":events", base + ":signals"]

    @property
    def _live_ttl(self) -> int:
        # A run still going outlives several missed lease renewals, whatever the retention.
        return _ms(max(self.retention, 3 * self.lease_ttl))

    # runs -----------------------------------------------------------------------------------------
    async def create_run(self, record: RunRecord, first_event: EventRecord) -> None:
        run_key, events_key, _ = self._run_keys(record.run.run_id)
        fields = encode_run_fields(dict(record.run))
        if record.owner is not None:
            fields += [OWNER_FIELD, record.owner]
        args = [
            str(record.run.run_id),
            self._live_ttl,
            _ms(self.lease_ttl),
            first_event.type,
            first_event.data,
        ]
        await self._script("CREATE_RUN", [run_key, events_key, self._key("leases")], args + fields)

    async def get_run(self, run_id: uuid.UUID) -> RunRecord | None:
        client = self.client
        with self._reachable():
            fields: Any = await client.hgetall(self._run_keys(run_id)[0])
        return decode_run(fields) if fields else None

    async def update_run(
        self,
        run_id: uuid.UUID,
        changes: Mapping[str, Any],
        *,
        expect: Collection[RunStatus] | None = None,
    ) -> RunRecord | None:
        status = changes.get("status")
        terminal = status is not None and RunStatus(status).is_terminal
        expected = [] if expect is None else [encode_status(s) for s in expect]
        args: list[Any] = [
            str(run_id),
            _ms(self.retention) if terminal else self._live_ttl,
            "1" if terminal else "0",
            _ms(self.retention),
            -1 if expect is None else len(expected),
            *expected,
            *encode_run_fields(changes),
        ]
        keys = [*self._run_keys(run_id), self._key("leases"), self._key("finished")]
        result = await self._script("UPDATE_RUN", keys, args)
        if not result:
            return None
        flat, finished = result
        if finished > self.max_finished_runs:
            await self._evict(finished - self.max_finished_runs)
        return decode_run(pairs(flat))

    async def _evict(self, count: int) -> None:
        """Drop the oldest finished runs beyond ``max_finished_runs``."""
        client = self.client
        with self._reachable():
            oldest: Any = await client.zpopmin(self._key("finished"), count)
            if oldest:
                run_ids = [uuid.UUID(member.decode()) for member, _ in oldest]
                await client.delete(*(key for run_id in run_ids for key in self._run_keys(run_id)))

    # events ---------------------------------------------------------------------------------------
    async def append_events(self, run_id: uuid.UUID, events: Sequence[EventRecord]) -> None:
        if not events:
            return
        args: list[Any] = []
        for event in events:
            args += [event.type, event.data]
        await self._script("APPEND_EVENTS", [self._run_keys(run_id)[1]], args)

    async def count_events(self, run_id: uuid.UUID) -> int:
        client = self.client
        with self._reachable():
            return int(await client.xlen(self._run_keys(run_id)[1]))

    async def read_events(
        self,
        run_id: uuid.UUID,
        start: int,
        timeout: float = 0.0,  # noqa: ASYNC109 - the Store interface
    ) -> list[EventRecord]:
        key = self._run_keys(run_id)[1]
        client = self.client
        with self._reachable():
            entries = await client.xrange(key, f"0-{start + 1}", "+")
            if entries or timeout <= 0 or not await client.exists(key):
                return decode_events(entries)
        return await self._wait_for_events(key, start, timeout)

    async def _wait_for_events(self, key: str, start: int, wait: float) -> list[EventRecord]:
        """``XREAD BLOCK`` until an event comes or ``wait`` seconds pass.

        A blip of Redis shorter than ``outage_grace`` (a failover, a restart) goes unnoticed by the
        reader; a longer outage raises :class:`StoreUnavailable`.
        """
        deadline = time.monotonic() + wait
        failing_since: float | None = None
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                with self._reachable(remaining + self.timeout):
                    found: Any = await self.client.xread({key: f"0-{start}"}, block=_ms(remaining))
            except StoreUnavailable:
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since >= self.outage_grace or now >= deadline:
                    raise
                await anyio.sleep(0.2)
                continue
            if found:
                return decode_events(found[0][1])
            failing_since = None
        return []

    # signals --------------------------------------------------------------------------------------
    async def send_signal(self, run_id: uuid.UUID, signal: Signal) -> None:
        run_key, _, signals_key = self._run_keys(run_id)
        self.client  # noqa: B018 - makes the channel
        args = [encode_signal(signal), self._live_ttl, self._channel, str(run_id)]
        await self._script("SEND_SIGNAL", [run_key, signals_key], args)

    async def receive_signal(self, run_id: uuid.UUID) -> Signal:
        key = self._run_keys(run_id)[2]
        client, listener = self.client, self._listener
        assert listener is not None
        with listener.watch(str(run_id)) as woken:
            while True:
                woken.clear()
                try:
                    with self._reachable():
                        raw: Any = await client.lpop(key)
                except StoreUnavailable as exc:
                    # The executing worker has nothing better to do than wait for Redis to return.
                    logger.warning("run %s: cannot read its signals (%s); retrying", run_id, exc)
                    raw = None
                    await anyio.sleep(0.5)
                if raw is not None:
                    return decode_signal(raw)
                with anyio.move_on_after(listener.fallback_poll):
                    await woken.wait()
                listener.ensure_running()

    # liveness -------------------------------------------------------------------------------------
    async def renew_leases(self, run_ids: Collection[uuid.UUID], ttl: float) -> None:
        self.lease_ttl = ttl
        if not run_ids:
            return
        client = self.client
        with self._reachable():
            async with client.pipeline(transaction=False) as pipe:
                args: list[Any] = [_ms(ttl), *(str(run_id) for run_id in run_ids)]
                await self._scripts["RENEW_LEASES"](keys=[self._key("leases")], args=args, client=pipe)
                for run_id in run_ids:
                    for key in self._run_keys(run_id):
                        pipe.pexpire(key, self._live_ttl)
                await pipe.execute()

    async def find_lost_runs(self) -> list[uuid.UUID]:
        candidates = await self._script("FIND_LOST_RUNS", [self._key("leases")], [])
        if not candidates:
            return []
        client = self.client
        with self._reachable():
            async with client.pipeline(transaction=False) as pipe:
                for member in candidates:
                    pipe.hget(self._run_keys(uuid.UUID(member.decode()))[0], "status")
                statuses = await pipe.execute()
            lost: list[uuid.UUID] = []
            gone: list[bytes] = []
            for member, status in zip(candidates, statuses, strict=False):
                if status is None or RunStatus(status.decode().strip('"')).is_terminal:
                    gone.append(member)
                else:
                    lost.append(uuid.UUID(member.decode()))
            if gone:
                await client.zrem(self._key("leases"), *gone)
        return lost

    # sessions -------------------------------------------------------------------------------------
    def _session_keys(self, session_id: uuid.UUID) -> list[str]:
        base = self._key("session", session_id)
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
        client = self.client
        with self._reachable():
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
        ttl = _ms(self.retention)
        client = self.client
        with self._reachable():
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
        args = [_ms(self.retention), str(session_id), owner or "", "0" if state is None else "1", state or ""]
        flat, full_history = await self._script(
            "EXTEND_SESSION", self._session_keys(session_id), [*args, *history]
        )
        return self._decode_session(session_id, pairs(flat), full_history)

    # resources ------------------------------------------------------------------------------------
    async def put_resource(self, resource_id: uuid.UUID, data: bytes, *, owner: str | None = None) -> None:
        key = self._key("resource", resource_id)
        fields: dict[str, bytes | str] = {"data": data}
        if owner is not None:
            fields["owner"] = owner
        client = self.client
        with self._reachable():
            async with client.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
                pipe.pexpire(key, _ms(self.retention))
                await pipe.execute()

    async def get_resource(self, resource_id: uuid.UUID) -> bytes | None:
        client = self.client
        with self._reachable():
            data: Any = await client.hget(self._key("resource", resource_id), "data")
        return None if data is None else bytes(data)
