"""What a run costs the Redis store: commands sent and round trips, pinned so that they cannot grow back.

The engine runs in process (``ACPService`` with a :class:`RedisStore` on the machine's Redis, a key prefix
of its own) over a redis-py connection class that counts what it sends: a round trip is one write to the
socket (a script, a pipeline, a command), a command is one command packed into it (``EVALSHA`` of a Lua
script counts as one, whatever it runs inside Redis). ``docs/performance.md`` ("Store round trips")
lists the figures, before and after they were cut.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import AsyncIterator, Awaitable, Iterable
from typing import Any

import pytest
import redis
from redis.asyncio.connection import Connection

from acp_adapters import ACPService, AgentRegistry, Settings
from acp_adapters.core.http import Request, Response, StreamResponse
from acp_adapters.core.models import Message, RunStatus
from acp_adapters.core.store import Signal
from acp_adapters.stores.redis import RedisStore
from acp_adapters.testing.stores import event, new_run
from tests.helpers import run_body
from tests.stores.backends import REDIS_URL
from tests.stores.redis_server import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

#: Round trips and commands of each scenario at most (what the store costs now; see the docs).
SYNC_ECHO = {"round_trips": 1, "commands": 1}
ASYNC_ECHO_AND_POLL = {"round_trips": 3, "commands": 3}
#: For one stream event, the cost of a stream of ``STREAM_PARTS`` parts less that of a stream of none.
STREAM_PARTS = 200
STREAM_EVENT = {"round_trips": 0.05, "commands": 0.05}


class CountingConnection(Connection):
    """A redis-py connection that counts round trips and commands (by name) into ``tally``; not the
    handshake of a new connection (the pool makes one when runs overlap, at random)."""

    tally: collections.Counter[str] = collections.Counter()
    #: The ``EVALSHA`` calls, by the script's SHA.
    scripts: collections.Counter[str] = collections.Counter()
    _handshake = False

    # redis-py 5.0 opens a connection with on_connect(); 5.3 and later with on_connect_check_health(), which
    # their on_connect() also calls: count whichever comes first, once.
    async def on_connect(self) -> None:
        await self._handshaking(super().on_connect())

    async def on_connect_check_health(self, check_health: bool = True) -> None:
        await self._handshaking(super().on_connect_check_health(check_health))

    async def _handshaking(self, step: Awaitable[None]) -> None:
        if self._handshake:
            await step
            return
        CountingConnection.tally["connections"] += 1
        self._handshake = True
        try:
            await step
        finally:
            self._handshake = False

    def pack_command(self, *args: Any) -> list[bytes]:
        if not self._handshake:
            name = args[0] if isinstance(args[0], str) else args[0].decode()
            CountingConnection.tally["commands"] += 1
            CountingConnection.tally[name.upper()] += 1
            if name.upper() == "EVALSHA":  # which script: by its SHA
                sha = args[1] if isinstance(args[1], str) else args[1].decode()
                CountingConnection.scripts[sha] += 1
        return super().pack_command(*args)

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not self._handshake:
            CountingConnection.tally["round_trips"] += 1
        await super().send_packed_command(command, check_health)


def registry() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent(name="echo")
    async def echo(input: list[Message]) -> AsyncIterator[Message]:
        for message in input:
            yield message

    @agents.agent(name="chunks")
    async def chunks(input: list[Message]) -> AsyncIterator[str]:
        for i in range(int(input[-1].text)):
            yield f"{i} "

    @agents.agent(name="echo-then-wait")
    async def echo_then_wait(input: list[Message]) -> AsyncIterator[Message]:
        yield input[0]
        await RELEASE.wait()

    return agents


#: What ``echo-then-wait`` waits for after its message.
RELEASE = asyncio.Event()


@pytest.fixture
async def service(prefix: str) -> AsyncIterator[ACPService]:
    # A long lease: the lease keeper's renewals (every lease_ttl / 3) stay out of the counts.
    store = RedisStore.from_url(REDIS_URL, prefix=prefix, lease_ttl=120, connection_class=CountingConnection)
    service = ACPService(registry(), store=store, settings=Settings(lease_ttl=120))
    yield service
    await service.aclose()


async def call(service: ACPService, method: str, path: str, body: Any = None) -> Response | StreamResponse:
    data = json.dumps(body).encode() if body is not None else b""
    return await service.handle(Request(method, path, "http://test/acp", "", {}, data, None))


async def settle() -> None:
    """Let the tasks a run leaves behind (its signal listener, write-behind) finish their round trips."""
    for _ in range(20):
        await asyncio.sleep(0.01)


async def cost(scenario: Iterable[Any]) -> collections.Counter[str]:
    CountingConnection.tally.clear()
    CountingConnection.scripts.clear()
    for step in scenario:
        await step
    await settle()
    return collections.Counter(CountingConnection.tally)


async def sync_echo(service: ACPService) -> None:
    response = await call(service, "POST", "/runs", run_body("echo", "hi"))
    assert isinstance(response, Response) and response.status == 200
    assert json.loads(response.body)["status"] == "completed"


async def async_echo_and_poll(service: ACPService) -> None:
    response = await call(service, "POST", "/runs", run_body("echo", "hi", mode="async"))
    assert isinstance(response, Response) and response.status == 202
    run_id = json.loads(response.body)["run_id"]
    await asyncio.sleep(0.05)  # the run completes meanwhile
    polled = await call(service, "GET", f"/runs/{run_id}")
    assert isinstance(polled, Response) and json.loads(polled.body)["status"] == "completed"


async def stream(service: ACPService, parts: int) -> None:
    response = await call(service, "POST", "/runs", run_body("chunks", str(parts), mode="stream"))
    assert isinstance(response, StreamResponse)
    body = b"".join([chunk async for chunk in response.body])
    assert b"run.completed" in body
    assert body.count(b'"type":"message.part"') == parts


def store_script(service: ACPService, name: str) -> Any:
    """The service's Redis store's script ``name`` (its ``sha`` is what ``EVALSHA`` names)."""
    store = service.store
    assert isinstance(store, RedisStore)
    return store._redis._scripts[name]


def report(name: str, counts: collections.Counter[str]) -> None:
    detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k not in ("round_trips", "commands"))
    print(f"{name}: {counts['round_trips']} round trips, {counts['commands']} commands ({detail})")


async def test_sync_echo_round_trips(service: ACPService) -> None:
    for _ in range(3):  # warm: connections made, scripts loaded, the notifier listening
        await sync_echo(service)
    await settle()
    counts = await cost([sync_echo(service)])
    report("sync echo", counts)
    assert counts["round_trips"] <= SYNC_ECHO["round_trips"], counts
    assert counts["commands"] <= SYNC_ECHO["commands"], counts


async def test_async_echo_and_poll_round_trips(service: ACPService) -> None:
    for _ in range(3):
        await async_echo_and_poll(service)
    await settle()
    counts = await cost([async_echo_and_poll(service)])
    report("async echo + one poll", counts)
    assert counts["round_trips"] <= ASYNC_ECHO_AND_POLL["round_trips"], counts
    assert counts["commands"] <= ASYNC_ECHO_AND_POLL["commands"], counts


async def test_stream_event_round_trips(service: ACPService) -> None:
    for _ in range(3):
        await stream(service, 50)
    await settle()
    empty = await cost([stream(service, 0)])
    full = await cost([stream(service, STREAM_PARTS)])
    report("stream of 0 parts", empty)
    report(f"stream of {STREAM_PARTS} parts", full)
    per_event = {key: (full[key] - empty[key]) / STREAM_PARTS for key in ("round_trips", "commands")}
    print(f"one stream event: {per_event}")
    assert per_event["round_trips"] <= STREAM_EVENT["round_trips"], (empty, full)
    assert per_event["commands"] <= STREAM_EVENT["commands"], (empty, full)


# what the cuts must not lose ---------------------------------------------------------------------------
async def test_the_output_of_a_run_that_goes_on_is_written_with_its_messages_events(
    service: ACPService,
) -> None:
    """A message's output is held for the run's next write (its ending, for a short run), but not for
    longer than its events: a run that goes on shows it in its snapshot as soon as they are written."""
    RELEASE.clear()
    response = await call(service, "POST", "/runs", run_body("echo-then-wait", "hi", mode="async"))
    assert isinstance(response, Response) and response.status == 202
    run_id = json.loads(response.body)["run_id"]
    try:
        for _ in range(200):
            polled = await call(service, "GET", f"/runs/{run_id}")
            assert isinstance(polled, Response)
            run = json.loads(polled.body)
            if run["output"]:
                break
            await asyncio.sleep(0.01)
        assert run["status"] == "in-progress" and run["output"][0]["parts"][0]["content"] == "hi", run
    finally:
        RELEASE.set()
    for _ in range(200):
        done = await call(service, "GET", f"/runs/{run_id}")
        assert isinstance(done, Response)
        if json.loads(done.body)["status"] == "completed":
            break
        await asyncio.sleep(0.01)
    assert isinstance(done, Response) and len(json.loads(done.body)["output"]) == 1


async def test_a_signal_sent_before_the_worker_listens_is_heard_without_a_look(prefix: str) -> None:
    """The worker of a run created with the notifier listening skips its first look for signals: one
    sent before it listens (a cancel at once from another worker) is still delivered, at once."""
    store = RedisStore.from_url(REDIS_URL, prefix=prefix, lease_ttl=120)
    other = RedisStore.from_url(REDIS_URL, prefix=prefix, lease_ttl=120)
    try:
        first = await new_run(store)
        waiting = asyncio.create_task(store.receive_signal(first.run_id))  # the notifier is listening
        await asyncio.sleep(0.3)
        for delay in (0.0, 0.2):  # the message handed over before the worker listens, or while it starts
            run = await new_run(store)
            await other.send_signal(run.run_id, Signal("cancel"))
            await asyncio.sleep(delay)
            started = time.monotonic()
            assert await asyncio.wait_for(store.receive_signal(run.run_id), 5) == Signal("cancel")
            assert time.monotonic() - started < 1.0
        waiting.cancel()
    finally:
        await store.close()
        await other.close()


async def test_a_reader_in_another_process_is_woken_though_the_writer_publishes_only_when_watched(
    prefix: str,
) -> None:
    """A run nobody watches from afar announces nothing; once a reader of another instance waits on it,
    every append wakes that reader at once (not at its next look, seconds later)."""
    store = RedisStore.from_url(REDIS_URL, prefix=prefix, lease_ttl=120)
    other = RedisStore.from_url(REDIS_URL, prefix=prefix, lease_ttl=120)
    try:
        run = await new_run(store)
        for index in range(1, 4):
            reader = asyncio.create_task(other.read_events(run.run_id, index, timeout=10))
            await asyncio.sleep(0.2)
            assert not reader.done()
            appended = time.monotonic()
            await store.append_events(run.run_id, [event(index)])
            assert await asyncio.wait_for(reader, 5) == [event(index)]
            assert time.monotonic() - appended < 1.0
    finally:
        await store.close()
        await other.close()


async def test_a_write_of_the_run_takes_queued_events_along_in_order(prefix: str) -> None:
    """Events queued behind a batch being flushed are written by the next write of the run, after that
    batch and before the write's own event, in one script; a compare-and-set that fails still writes them."""
    store = RedisStore.from_url(REDIS_URL, prefix=prefix, lease_ttl=120)
    try:
        run = await new_run(store)
        await store.append_events(run.run_id, [event(i) for i in range(1, 101)])
        await asyncio.sleep(0)  # the flush of those 100 is under way
        await store.append_events(run.run_id, [event(i) for i in range(101, 104)])
        changed = await store.transition(
            run.run_id, {"status": "in-progress"}, expect={RunStatus.CREATED}, events=[event(104)]
        )
        assert changed is not None and changed.run.status is RunStatus.IN_PROGRESS
        await store.append_events(run.run_id, [event(105)])
        refused = await store.transition(
            run.run_id, {"status": "completed"}, expect={RunStatus.CREATED}, events=[event(106)]
        )
        assert refused is None
        events = await store.read_events(run.run_id, 1)
        assert events == [event(i) for i in range(1, 106)]
    finally:
        await store.close()


async def test_the_executing_process_reads_its_runs_events_without_reading_them_back(
    service: ACPService,
) -> None:
    """The stream of a run executed here reads its events from the process's log of what it wrote: no
    ``XRANGE`` or ``READ_EVENTS`` brings them back from Redis."""
    for _ in range(2):
        await stream(service, 50)
    await settle()
    counts = await cost([stream(service, 2000)])
    report("stream of 2000 parts", counts)
    assert counts["XRANGE"] == 0, counts
    # At most one look at Redis: after the run's end, if the stream was busy sending when it came.
    assert CountingConnection.scripts[store_script(service, "READ_EVENTS").sha] <= 1, counts
    assert counts["round_trips"] <= 20, counts  # its creation, its batches, its ending


async def test_a_write_by_another_process_is_read_from_redis_in_its_place(prefix: str) -> None:
    """The log of a run is kept while every event of its stream was written here: one written by another
    process (a lost run failed elsewhere, say) is read from Redis at its index, and the log is dropped
    once a write here shows it is no longer whole."""
    store = RedisStore.from_url(REDIS_URL, prefix=prefix, lease_ttl=120)
    other = RedisStore.from_url(REDIS_URL, prefix=prefix, lease_ttl=120)
    try:
        run = await new_run(store)
        first = (await store.read_events(run.run_id, 0))[0]
        await store.append_events(run.run_id, [event(1)])
        await store.batcher.settle(run.run_id)
        await other.append_events(run.run_id, [event(2)])
        await other.batcher.settle(run.run_id)
        # A follower reads what it wrote, so far; a one-shot read (the events list) reads Redis: all of it.
        assert await store.read_events(run.run_id, 0, timeout=5) == [first, event(1)]
        assert await store.read_events(run.run_id, 0) == [first, event(1), event(2)]
        assert await store.read_events(run.run_id, 2, timeout=5) == [event(2)]  # then Redis
        await store.append_events(run.run_id, [event(3)])
        await store.batcher.settle(run.run_id)
        assert store._logs.get(run.run_id) is None
        assert await store.read_events(run.run_id, 0) == [first, event(1), event(2), event(3)]
    finally:
        await store.close()
        await other.close()


# no cold worker --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("warm", [True, False], ids=["started", "ping-only start"])
async def test_a_started_worker_makes_nothing_lazily_at_its_first_run(
    server: RedisServer, prefix: str, warm: bool
) -> None:
    """Once the store has started (the engine starts it with the worker: lifespan, gunicorn's hook), a
    worker's first run costs Redis what its second does: no connection opened, no script loaded (a new
    Redis has none: each script's first call fails, loads it and is sent again), no subscription of the
    notifier (and no look for signals because it was not listening yet). With a start that only pings
    (as before), the first run loads its script."""
    with redis.Redis.from_url(server.url) as raw:
        raw.script_flush()  # as a new or restarted Redis: no script loaded
    store = RedisStore.from_url(server.url, prefix=prefix, lease_ttl=120, connection_class=CountingConnection)
    if not warm:

        async def ping_only() -> None:
            with store._redis.reachable():
                await store._redis.client.ping()

        store._redis.warm = ping_only  # type: ignore[method-assign]
    service = ACPService(registry(), store=store, settings=Settings(lease_ttl=120))
    try:
        await service.engine.ensure_started()
        await settle()  # (the lease keeper's first look for lost runs)
        first = await cost([sync_echo(service), async_echo_and_poll(service)])
        second = await cost([sync_echo(service), async_echo_and_poll(service)])
        report("first sync echo, async echo and poll of a started worker", first)
        report("second", second)
        if warm:
            assert first == second == collections.Counter({"round_trips": 4, "commands": 4, "EVALSHA": 4})
        else:  # (each script's first call fails, loads it and is sent again)
            assert first["SCRIPT LOAD"] == 4 and first["SUBSCRIBE"] == 1, first
    finally:
        await service.aclose()
