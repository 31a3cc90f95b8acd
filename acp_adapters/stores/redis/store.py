"""RedisStore: runs, events, signals, sessions and resources shared by every worker and machine.

Rules this module keeps:

* A run is a hash of its ``Run`` fields (one JSON value each), updated in place; its events are a Redis
  Stream appended with ``XADD`` (event ``i`` has id ``0-(i+1)``), read from any index with ``XRANGE``.
  Readers wait without a connection of their own: the process's notifier wakes them (see
  ``.notifier``), and the events of the runs this process executes wake them in-process.
* The runs this process executes keep their written events in process too (``_logs``,
  :mod:`acp_adapters.core.own_logs`): its readers (the stream of the request that created the run) read
  them there, not back from Redis, once Redis has them (the scripts return the stream's length, which
  says whether the log holds every event); for every other run, readers read Redis.
* Appends are batched per run in the background (:mod:`acp_adapters.core.write_behind`); a status
  change first waits for the events before it.
* Everything that may race is one Lua script (see ``.scripts``): compare-and-set of the status,
  appends, signals, session history.
* Every key is under ``prefix`` and has a TTL: a finished run's keys live ``retention`` seconds; a run
  still going keeps its keys alive through its lease (``renew_leases``), never by luck.
* What is kept once done with is bounded by bytes as well as by time (``max_retained_bytes``, counted
  as Redis reports its memory) and finished runs by count, trimmed by the scripts that write them (see
  ``.retention``); a run still going is never evicted.
* No keyspace notifications, no ``CONFIG SET``, no ``KEYS``/``SCAN``: it runs on managed Redis and on
  any database number. (Not on Redis Cluster: a run's keys and the lease set meet in one script.)
* Redis unreachable raises :class:`StoreUnavailable` within ``timeout`` seconds (see
  ``.connection``); a blocked reader rides out a shorter blip than ``outage_grace``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.exceptions import RedisError

from acp_adapters.core.lifecycle import ENDED
from acp_adapters.core.models import RunStatus
from acp_adapters.core.own_logs import OwnLogs
from acp_adapters.core.store import EventRecord, RunRecord, Signal, StoreUnavailable
from acp_adapters.core.write_behind import BatchedEventsStore, EventBatcher

from .codec import (
    OWNER_FIELD,
    WORKER_FIELD,
    decode_events,
    decode_script_events,
    decode_signal,
    decode_snapshot,
    decode_status,
    encode_run_fields,
    encode_signal,
    encode_status,
    pack_events,
    worker_name,
)
from .connection import RedisConnection, milliseconds
from .sessions import RedisSessions

__all__ = ["RedisStore"]

#: Seconds a reader of a run executed here waits on its log before it looks at Redis too (see
#: ``_wait_for_events``), and between looks while Redis is unreachable.
_LOG_LOOK_AFTER = 0.5

logger = logging.getLogger("acp_adapters.stores.redis")


class RedisStore(RedisSessions, BatchedEventsStore):
    """A :class:`Store` in Redis, shared by every worker process on every machine.

    Build it with :meth:`from_url`; nothing connects until the engine starts it (or first use).

    ``retention``, ``max_finished_runs``, ``lease_ttl`` and ``max_retained_bytes`` left out come from
    the service's :class:`Settings`. ``max_retained_bytes`` bounds the memory Redis reports for the keys
    of finished runs, sessions, resources and idempotency keys under ``prefix`` (see
    ``.retention``).
    """

    shared: ClassVar[bool] = True
    writes_queued_with_change: ClassVar[bool] = True

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "acp:",
        retention: float | None = None,
        max_finished_runs: int | None = None,
        lease_ttl: float | None = None,
        max_retained_bytes: int | None = None,
        timeout: float = 5.0,
        connect_timeout: float = 2.0,
        retries: int = 1,
        max_connections: int = 50,
        outage_grace: float = 2.0,
        **redis_options: Any,
    ) -> None:
        self.prefix = prefix
        super().__init__(
            retention=retention,
            max_finished_runs=max_finished_runs,
            lease_ttl=lease_ttl,
            max_retained_bytes=max_retained_bytes,
        )
        #: How long a blocked reader rides out Redis being unreachable before it gives up.
        self.outage_grace = outage_grace
        #: Waiters look at their run again after this many seconds without a notification.
        self.poll_interval = 5.0
        self._redis = RedisConnection(
            url,
            channel_prefix=prefix,
            timeout=timeout,
            connect_timeout=connect_timeout,
            retries=retries,
            max_connections=max_connections,
            options=redis_options,
        )
        # No retry of our own: redis-py retries a refused connection, and a script that timed out may
        # still run on a Redis that was frozen (retrying it would append its events twice).
        self.batcher = EventBatcher(self._flush, max_pending=512, retries=0, logger=logger)
        #: The runs this instance created and has not seen end: it executes them, it writes their
        #: events (announced to its own readers in-process), and it just leased them.
        self._local_runs: dict[uuid.UUID, tuple[float, float]] = {}
        #: For each of those whose signals nobody has looked for yet: the notifier's token (see
        #: ``Notifier.expect``) from before its creation.
        self._signal_tokens: dict[uuid.UUID, object | None] = {}
        #: For each of those while every event of its stream was written here: the events, as written.
        self._logs = OwnLogs()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisStore:
        """A store on the Redis at ``url`` (``redis://``, ``rediss://``, ``unix://``; the path picks the
        database). ``options`` are this class's keyword arguments, then redis-py's (``client_name``,
        ``ssl_ca_certs``...).

        The URL may carry the key prefix, so that one setting says it all:
        ``redis://127.0.0.1:6379/0?prefix=myapp:acp:`` (an explicit ``prefix`` option wins).
        """
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        prefixes = [value for name, value in query if name == "prefix"]
        if prefixes:
            options.setdefault("prefix", prefixes[-1])
            url = urlunsplit(parts._replace(query=urlencode([(n, v) for n, v in query if n != "prefix"])))
        return cls(url, **options)

    @property
    def url(self) -> str:
        """The Redis URL."""
        return self._redis.url

    async def _append_events(self, run_id: uuid.UUID, events: list[EventRecord]) -> None:
        channel = self._redis.channel("events", run_id)
        run_key, events_key, _ = self._run_keys(run_id)
        count = await self._redis.script(
            "APPEND_EVENTS", [events_key, run_key], [channel, pack_events(events)]
        )
        self._logs.written(run_id, events, int(count))
        self._redis.notifier.wake(channel)

    async def start(self) -> None:
        # No cold worker: what the first run would make lazily is made now (a connection, the scripts
        # loaded, the notifier listening, so that the first run need not look for its signals). A
        # worker that starts while Redis is down still serves what needs no store (the agent list);
        # each store operation then answers for itself, and only the log says it early.
        try:
            await self._redis.warm()
        except StoreUnavailable as exc:
            logger.warning("Redis store %s: %s; retrying on each use", self._redis.url, exc)
        except RedisError as exc:
            logger.warning(
                "Redis store %s: its scripts will load at their first use (%s)", self._redis.url, exc
            )

    async def ping(self) -> None:
        with self._redis.reachable():
            await self._redis.client.ping()

    async def close(self) -> None:
        await self.batcher.close()
        await self._redis.aclose()

    def _key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(part) for part in parts)

    def _run_keys(self, run_id: uuid.UUID) -> list[str]:
        """The run's hash, events stream and signals list."""
        base = self._key("run", run_id)
        return [base, base + ":events", base + ":signals"]

    @property
    def _live_ttl(self) -> int:
        # A run still going outlives several missed lease renewals, whatever the retention.
        return milliseconds(max(self.retention, 3 * self.lease_ttl))

    # runs -----------------------------------------------------------------------------------------
    async def create_run(self, record: RunRecord, first_event: EventRecord) -> None:
        await self._create_run(record, [first_event], {})

    async def create_and_transition(
        self,
        record: RunRecord,
        first_event: EventRecord,
        changes: Mapping[str, Any],
        *,
        events: Sequence[EventRecord],
    ) -> bool:
        # One script: the run is stored as moved, its log starts with both events.
        status = changes.get("status", record.run.status)
        if RunStatus(status) in ENDED:  # a short run written once, at its end
            await self._create_ended_run(record, [first_event, *events], changes)
        else:
            await self._create_run(record, [first_event, *events], changes)
        return True

    @staticmethod
    def _fields(record: RunRecord, changes: Mapping[str, Any]) -> list[Any]:
        """The hash fields of a new run: the run as moved by ``changes``, its worker and owner."""
        fields = [*encode_run_fields({**dict(record.run), **changes}), WORKER_FIELD, worker_name()]
        if record.owner is not None:
            fields += [OWNER_FIELD, record.owner]
        return fields

    async def _create_ended_run(
        self, record: RunRecord, events: Sequence[EventRecord], changes: Mapping[str, Any]
    ) -> None:
        run_key, events_key, signals_key = self._run_keys(record.run.run_id)
        fields = self._fields(record, changes)
        args: list[Any] = [
            *self._book_args(),
            str(record.run.run_id),
            milliseconds(self.retention),
            len(events),
            *_event_args(events),
        ]
        keys = [run_key, events_key, signals_key, *self._book_keys()]
        await self._redis.script("CREATE_ENDED_RUN", keys, args + fields)

    async def _create_run(
        self, record: RunRecord, events: Sequence[EventRecord], changes: Mapping[str, Any]
    ) -> None:
        run_key, events_key, _ = self._run_keys(record.run.run_id)
        fields = self._fields(record, changes)
        args: list[Any] = [str(record.run.run_id), self._live_ttl, milliseconds(self.lease_ttl), len(events)]
        args += _event_args(events)
        # Its signals are heard from before it exists: its worker need not look for any when it starts.
        run_id = record.run.run_id
        token = self._redis.notifier.expect(str(run_id))
        try:
            await self._redis.script("CREATE_RUN", [run_key, events_key, self._key("leases")], args + fields)
        except BaseException:
            self._redis.notifier.unexpect(str(run_id))
            raise
        if len(self._local_runs) >= 100_000:  # runs that never ended here (their task was lost)
            self._forget_local(next(iter(self._local_runs)))
        self._local_runs[run_id] = (time.monotonic(), self.lease_ttl)
        self._signal_tokens[run_id] = token
        self._logs.start(run_id, events)

    def _forget_local(self, run_id: uuid.UUID) -> None:
        """The run no longer executes here."""
        self._local_runs.pop(run_id, None)
        self._logs.forget(run_id)
        if run_id in self._signal_tokens:
            del self._signal_tokens[run_id]
            self._redis.notifier.unexpect(str(run_id))

    async def get_run(self, run_id: uuid.UUID) -> RunRecord | None:
        reply = await self._redis.script("GET_RUN", [self._run_keys(run_id)[0]], [])
        return decode_snapshot(reply) if reply else None

    async def _change_run_with(
        self,
        run_id: uuid.UUID,
        queued: list[EventRecord],
        changes: Mapping[str, Any],
        expect: Collection[RunStatus] | None,
        events: Sequence[EventRecord],
        queued_changes: Mapping[str, Any] | None = None,
    ) -> RunRecord | None:
        """The events and fields still queued for the run, the compare-and-set of its fields and the
        events announcing it: one script."""
        status = changes.get("status")
        terminal = status is not None and RunStatus(status) in ENDED
        expected = [] if expect is None else [encode_status(s) for s in expect]
        fields = encode_run_fields(changes)
        # A field the change sets too is set by the change (if it applies; else the queued value stands).
        queued_fields = encode_run_fields(queued_changes) if queued_changes else []
        args: list[Any] = [
            *self._book_args(),
            str(run_id),
            milliseconds(self.retention) if terminal else self._live_ttl,
            "1" if terminal else "0",
            self._redis.channel("events", run_id),
            len(queued),
        ]
        args += _event_args(queued)
        args += [
            len(queued_fields),
            *queued_fields,
            -1 if expect is None else len(expected),
            *expected,
            len(fields),
            *fields,
        ]
        args += _event_args(events)
        keys = [*self._run_keys(run_id), self._key("leases"), *self._book_keys()]
        reply = await self._redis.script("UPDATE_RUN", keys, args)
        applied = bool(reply) and len(reply) > 1
        if reply:
            self._logs.written(run_id, [*queued, *events] if applied else queued, int(reply[0]))
        if terminal:
            self._forget_local(run_id)
        if queued or (applied and events):
            self._redis.notifier.wake(self._redis.channel("events", run_id))
        return decode_snapshot(reply[1:], {**(queued_changes or {}), **changes}) if applied else None

    # events ---------------------------------------------------------------------------------------
    # Appends go through ``batcher`` (BatchedEventsStore): an agent streaming parts does not wait for
    # a round trip per part.
    async def _count_events(self, run_id: uuid.UUID) -> int:
        client = self._redis.client
        with self._redis.reachable():
            return int(await client.xlen(self._run_keys(run_id)[1]))

    async def read_events(
        self,
        run_id: uuid.UUID,
        start: int,
        timeout: float = 0.0,
    ) -> list[EventRecord]:
        run_key, key, _ = self._run_keys(run_id)
        # A follower (it waits) of a run written here reads what was written here; a one-shot read (the
        # events list) reads Redis, which has every event, whoever wrote it.
        log = self._logs.get(run_id) if timeout > 0 else None
        if log is not None and len(log) > start:  # written here: no need to read them back
            return log[start:]
        if log is not None:
            return await self._wait_for_events(run_id, key, start, timeout, log)
        entries = await self._redis.script("READ_EVENTS", [key, run_key], [f"0-{start + 1}", "0"])
        if entries or timeout <= 0 or entries is None:  # None: the run is gone
            return decode_script_events(entries or [])
        return await self._wait_for_events(run_id, key, start, timeout)

    async def _wait_for_events(
        self,
        run_id: uuid.UUID,
        key: str,
        start: int,
        wait: float,
        log: list[EventRecord] | None = None,
    ) -> list[EventRecord]:
        """Wait on the run's channel, looking at the stream after each wake-up.

        The events of a run executed by this process are announced in-process (no subscription);
        those of any other run by its channel. With the run's ``log`` (see ``_logs``), what this
        process writes is read there; the stream in Redis is looked at (another process may have
        written) only when the log has nothing new. A blip of Redis shorter than ``outage_grace`` (a
        failover, a restart) goes unnoticed by the reader; a longer outage raises StoreUnavailable.
        """
        deadline = time.monotonic() + wait
        failing_since: float | None = None
        channel = self._redis.channel("events", run_id)
        local = run_id in self._local_runs
        # A reader in another process marks the run watched once (see scripts._ANNOUNCE), after its
        # subscription is live: the writer publishes only then.
        marked = local
        # With the log, wait first: a look at Redis now would often race this process's own batch in
        # flight and read it back. Redis is looked at after a short wait that brought nothing new.
        look = log is None
        interval = _LOG_LOOK_AFTER if log is not None else self.poll_interval
        async with self._redis.notifier.watch(channel, local=local) as watch:
            while True:
                if log is not None and len(log) > start:
                    return log[start:]
                try:
                    if not look:
                        entries = []
                    elif not marked and watch.live:
                        keys = [key, self._run_keys(run_id)[0]]
                        scripted = await self._redis.script("READ_EVENTS", keys, [f"0-{start + 1}", "1"])
                        marked = True
                        entries = decode_script_events(scripted or [])
                    else:
                        with self._redis.reachable():
                            entries = decode_events(
                                await self._redis.client.xrange(key, f"0-{start + 1}", "+")
                            )
                    failing_since = None
                    if entries:
                        return entries
                except StoreUnavailable:
                    now = time.monotonic()
                    failing_since = failing_since or now
                    if now - failing_since >= self.outage_grace or now >= deadline:
                        raise
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                if not marked and watch.live and failing_since is None:
                    continue  # the subscription became live meanwhile: look again, marking the run
                # Waiters look again now and then on their own: the notifier is only a hint.
                wait = _LOG_LOOK_AFTER if failing_since is not None else interval
                await watch.wait(min(remaining, wait))
                interval, look = self.poll_interval, True

    # signals --------------------------------------------------------------------------------------
    async def send_signal(self, run_id: uuid.UUID, signal: Signal) -> None:
        run_key, _, signals_key = self._run_keys(run_id)
        args = [encode_signal(signal), self._live_ttl, self._redis.notifier.home, str(run_id)]
        await self._redis.script("SEND_SIGNAL", [run_key, signals_key], args)

    async def receive_signal(self, run_id: uuid.UUID) -> Signal:
        key = self._run_keys(run_id)[2]
        token = self._signal_tokens.pop(run_id, None)
        notifier = self._redis.notifier
        async with notifier.watch_home(str(run_id)) as watch:
            # A run created here with the notifier listening: a signal sent since would have been heard.
            look = not notifier.quiet(str(run_id), token)
            while True:
                if not look:
                    look = True
                    await watch.wait(self.poll_interval)
                    continue
                try:
                    with self._redis.reachable():
                        raw: Any = await self._redis.client.lpop(key)
                except StoreUnavailable as exc:
                    # The executing worker has nothing better to do than wait for Redis to return.
                    logger.warning("run %s: cannot read its signals (%s); retrying", run_id, exc)
                    raw = None
                if raw is not None:
                    return decode_signal(raw)
                await watch.wait(self.poll_interval)

    # liveness -------------------------------------------------------------------------------------
    async def renew_leases(self, run_ids: Collection[uuid.UUID], ttl: float) -> None:
        self.lease_ttl = ttl
        now = time.monotonic()
        # A run created here a moment ago holds the lease its creation gave it: no round trip for it.
        fresh = {run_id for run_id, (created, lease) in self._local_runs.items() if now - created < lease / 3}
        run_ids = [run_id for run_id in run_ids if run_id not in fresh]
        if not run_ids:
            return
        keys = [self._key("leases")]
        for run_id in run_ids:
            keys += self._run_keys(run_id)
        args = [milliseconds(ttl), self._live_ttl, worker_name(), *(str(run_id) for run_id in run_ids)]
        await self._redis.script("RENEW_LEASES", keys, args)

    async def hand_over(self, run_id: uuid.UUID, lease: float) -> None:
        # Its events come from another process: this one's readers subscribe to them (not local).
        self._forget_local(run_id)
        keys = [self._key("leases"), *self._run_keys(run_id)]
        live = max(self._live_ttl, milliseconds(2 * lease))
        args = [milliseconds(lease), live, worker_name(), str(run_id)]
        await self._redis.script("RENEW_LEASES", keys, args)

    async def find_lost_runs(self) -> list[uuid.UUID]:
        candidates = await self._redis.script("FIND_LOST_RUNS", [self._key("leases")], [])
        if not candidates:
            return []
        client = self._redis.client
        with self._redis.reachable():
            async with client.pipeline(transaction=False) as pipe:
                for member in candidates:
                    pipe.hget(self._run_keys(uuid.UUID(member.decode()))[0], "status")
                statuses = await pipe.execute()
            lost: list[uuid.UUID] = []
            gone: list[bytes] = []
            for member, status in zip(candidates, statuses, strict=False):
                if status is None or decode_status(status) in ENDED:
                    gone.append(member)
                else:
                    lost.append(uuid.UUID(member.decode()))
            if gone:
                await client.zrem(self._key("leases"), *gone)
        return lost


def _event_args(events: Sequence[EventRecord]) -> list[Any]:
    """Events as a script's arguments: type, data, type, data, ..."""
    return [item for event in events for item in (event.type, event.data)]
