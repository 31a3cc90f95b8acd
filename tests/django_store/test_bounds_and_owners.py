"""The database store's byte bound (``max_retained_bytes``), its owners, session claims and idempotency
keys: on SQLite and PostgreSQL, races across threads that each have their own store and connections."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from io import StringIO
from typing import TypeVar

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from acp_adapters.core.models import Run, RunStatus
from acp_adapters.core.settings import Settings
from acp_adapters.core.store import EventRecord, ResourceRecord, RunRecord, SessionRecord
from acp_adapters.django.db import ops as db_ops
from acp_adapters.django.db.models import IdempotencyKey, Resource, RunEvent, Session, SessionHistoryEntry
from acp_adapters.django.db.models import Run as RunRow
from acp_adapters.django.db.purge import retained_bytes
from acp_adapters.django.db.store import DjangoStore
from tests.django_store.conftest import StoreFactory
from tests.django_store.test_store import in_thread

pytestmark = pytest.mark.anyio

KiB = 1024
T = TypeVar("T")


async def db(alias: str, query: Callable[[], T]) -> T:
    """Run ORM code in a thread (an async test may not), closing the connection it opened."""

    def run() -> T:
        try:
            return query()
        finally:
            connections[alias].close()

    return await asyncio.to_thread(run)


def event(size: int, n: object = 0) -> EventRecord:
    """A ``generic`` event of exactly ``size`` bytes."""
    head = f'{{"type":"generic","n":"{n}","pad":"'.encode()
    return EventRecord("generic", head + b"x" * (size - len(head) - 2) + b'"}')


async def new_run(store: DjangoStore, owner: str | None = None) -> Run:
    run = Run(agent_name="echo")
    await store.create_run(
        RunRecord(run=run, owner=owner), EventRecord("run.created", b'{"type":"run.created"}')
    )
    return run


async def finished_run(store: DjangoStore, log: int) -> Run:
    """A run that wrote ``log`` bytes of events (besides its first) and completed."""
    run = await new_run(store)
    await store.append_events(run.run_id, [event(log // 4, i) for i in range(4)])
    assert await store.update_run(run.run_id, {"status": RunStatus.COMPLETED}) is not None
    return run


async def run_bytes(alias: str) -> int:
    return (await db(alias, lambda: retained_bytes(alias)))[0]


# the byte bound -----------------------------------------------------------------------------------------
async def test_the_byte_counts_are_those_of_the_rows(alias: str, make_store: StoreFactory) -> None:
    store = make_store()
    run = await finished_run(store, 4 * KiB)
    row = await db(alias, lambda: RunRow.objects.using(alias).get(pk=run.run_id))
    rows = RunEvent.objects.using(alias).filter(run_id=run.run_id)
    events = await db(alias, lambda: list(rows.values_list("data", flat=True)))
    assert row.log_bytes == sum(len(data.encode()) for data in events) > 4 * KiB
    assert row.snapshot_bytes == len(row.snapshot.encode())
    await store.put_resource(uuid.uuid4(), b"r" * 300)
    await store.extend_session(uuid.uuid4(), ["http://h/a", "http://h/bb"], state="http://h/s")
    assert await db(alias, lambda: retained_bytes(alias)) == (
        row.log_bytes + row.snapshot_bytes,
        300 + 10 + 11 + 10,
    )


async def test_finished_runs_stay_within_max_retained_bytes(alias: str, make_store: StoreFactory) -> None:
    budget = 40 * KiB
    store = make_store(max_retained_bytes=budget)
    going = await new_run(store)  # a run still going is never deleted, whatever its log holds
    await store.append_events(going.run_id, [event(10 * KiB, i) for i in range(6)])
    finished = []
    for _ in range(60):
        finished.append((await finished_run(store, 4 * KiB)).run_id)
        # Checked each time a tenth of the budget was written: never more over it than that and one run.
        assert await run_bytes(alias) <= budget + budget // 10 + 5 * KiB
    assert await run_bytes(alias) <= budget
    kept = await db(alias, lambda: set(RunRow.objects.using(alias).values_list("id", flat=True)))
    assert going.run_id in kept
    kept_finished = [run_id for run_id in finished if run_id in kept]
    assert 5 <= len(kept_finished) <= 10
    assert kept_finished == finished[-len(kept_finished) :]  # the oldest went first
    assert not await db(alias, RunEvent.objects.using(alias).exclude(run_id__in=kept).exists)
    assert len(await store.read_events(going.run_id, 0)) == 7


async def test_sessions_and_resources_go_least_recently_used_first(
    alias: str, make_store: StoreFactory
) -> None:
    budget = 10 * KiB
    store = make_store(max_retained_bytes=10**9)
    resources = []
    for _ in range(30):
        resources.append(uuid.uuid4())
        await store.put_resource(resources[-1], b"r" * KiB)
        await asyncio.sleep(0.002)  # distinct times
    session = uuid.uuid4()
    await store.extend_session(session, [f"http://h/acp/resources/{resources[0]}"])  # uses the oldest again
    await make_store(max_retained_bytes=budget).trim()
    assert sum(await db(alias, lambda: retained_bytes(alias))) <= budget
    kept = await db(alias, lambda: set(Resource.objects.using(alias).values_list("id", flat=True)))
    assert resources[0] in kept and resources[-1] in kept and resources[1] not in kept
    assert await db(alias, Session.objects.using(alias).filter(pk=session).exists)


async def test_acp_purge_applies_max_retained_bytes(alias: str, make_store: StoreFactory) -> None:
    store = make_store(max_retained_bytes=10**9)
    runs = [await finished_run(store, 4 * KiB) for _ in range(6)]
    out = StringIO()
    await db(
        alias,
        lambda: call_command(
            "acp_purge", "--database", alias, "--max-retained-bytes", str(10 * KiB), stdout=out
        ),
    )
    assert "Deleted 4 run(s)" in out.getvalue()
    kept = await db(alias, lambda: set(RunRow.objects.using(alias).values_list("id", flat=True)))
    assert kept == {run.run_id for run in runs[4:]}


async def test_max_retained_bytes_comes_from_the_service_unless_given(make_store: StoreFactory) -> None:
    settings = Settings(max_retained_bytes=12345, run_retention=60.0, max_finished_runs=7)
    untuned, tuned = make_store(), make_store(max_retained_bytes=99, session_retention=5.0)
    assert untuned.max_retained_bytes == Settings().max_retained_bytes
    for store in (untuned, tuned):
        store.configure(settings)
    assert (untuned.max_retained_bytes, untuned.retention, untuned.max_finished_runs) == (12345, 60.0, 7)
    assert untuned.session_retention == 60.0  # follows the retention when not given
    assert (tuned.max_retained_bytes, tuned.retention, tuned.session_retention) == (99, 60.0, 5.0)


async def test_the_store_takes_its_tunables_from_the_mount_not_from_the_django_settings(
    make_store: StoreFactory,
) -> None:
    from django.test import override_settings

    from acp_adapters.core.agents import AgentRegistry
    from acp_adapters.django import ACPSite

    with override_settings(ACP_ADAPTERS={"SETTINGS": {"run_retention": 60, "max_finished_runs": 7}}):
        store = make_store(max_finished_runs=3)
        assert store.retention == Settings().run_retention  # reads no Django setting itself
        site = ACPSite(AgentRegistry(), store=store, settings=Settings(run_retention=90, lease_ttl=4.0))
        assert site.service.store is store
    assert (store.retention, store.session_retention, store.lease_ttl) == (90.0, 90.0, 4.0)
    assert store.max_finished_runs == 3  # given explicitly: the mount's settings do not override it


# owners -------------------------------------------------------------------------------------------------
async def test_no_owner_is_null_in_every_table(alias: str, make_store: StoreFactory) -> None:
    store = make_store()
    run, resource_id, session_id = await new_run(store), uuid.uuid4(), uuid.uuid4()
    await store.put_resource(resource_id, b"r")
    await store.claim_session(SessionRecord(id=session_id))
    assert await store.get_resource(resource_id) == ResourceRecord(b"r", None)
    record = await store.get_run(run.run_id)
    session = await store.get_session(session_id)
    assert record is not None and record.owner is None and session is not None and session.owner is None
    for model, pk in ((RunRow, run.run_id), (Resource, resource_id), (Session, session_id)):
        assert await db(alias, model.objects.using(alias).filter(pk=pk, owner__isnull=True).exists)


async def test_a_resource_keeps_its_owner(make_store: StoreFactory) -> None:
    store = make_store()
    resource_id = uuid.uuid4()
    await store.put_resource(resource_id, b"mine", owner="alice")
    assert await store.get_resource(resource_id) == ResourceRecord(b"mine", "alice")
    assert await store.get_resource(uuid.uuid4()) is None


@pytest.mark.parametrize(("owner", "intruder"), [("alice", "bob"), ("alice", None), (None, "bob")])
async def test_another_owner_writes_nothing_into_a_session(
    alias: str, make_store: StoreFactory, owner: str | None, intruder: str | None
) -> None:
    store = make_store()
    session_id = uuid.uuid4()
    record = await store.extend_session(session_id, ["http://h/1"], state="http://h/s", owner=owner)
    assert record is not None and record.owner == owner
    row = Session.objects.using(alias).filter(pk=session_id).values()
    before = await db(alias, row.get)
    assert await store.extend_session(session_id, ["http://h/2"], state="http://h/t", owner=intruder) is None
    assert await db(alias, row.get) == before
    assert await db(alias, SessionHistoryEntry.objects.using(alias).filter(session_id=session_id).count) == 1
    again = await store.extend_session(session_id, ["http://h/3"], owner=owner)
    assert again is not None and again.history == ["http://h/1", "http://h/3"] and again.state == "http://h/s"


async def test_an_expired_session_is_anyone_s_to_take(alias: str, make_store: StoreFactory) -> None:
    store = make_store(session_retention=60.0)
    session_id = uuid.uuid4()
    await store.claim_session(SessionRecord(id=session_id, history=["http://h/old"], owner="alice"))
    row = Session.objects.using(alias).filter(pk=session_id)
    await db(alias, lambda: row.update(updated_at=timezone.now() - timedelta(hours=1)))
    taken = await store.claim_session(SessionRecord(id=session_id, history=["http://h/new"], owner="bob"))
    assert taken == SessionRecord(id=session_id, history=["http://h/new"], owner="bob")
    assert await store.get_session(session_id) == taken


async def test_claim_session_keeps_the_first_claim(make_store: StoreFactory) -> None:
    store, other = make_store(), make_store()
    first = SessionRecord(id=uuid.uuid4(), history=["http://h/1"], state="http://h/s", owner="alice")
    assert await store.claim_session(first) == first
    assert await other.claim_session(SessionRecord(id=first.id, history=["x"], owner="bob")) == first
    assert await other.get_session(first.id) == first


async def test_racing_session_claims_have_one_winner(alias: str) -> None:
    session_id = uuid.uuid4()

    def claimer(owner: str) -> Callable[[DjangoStore], Awaitable[SessionRecord]]:
        async def claim(store: DjangoStore) -> SessionRecord:
            return await store.claim_session(
                SessionRecord(
                    id=session_id, history=[f"http://h/{owner}/1", f"http://h/{owner}/2"], owner=owner
                )
            )

        return claim

    joins = [in_thread(alias, claimer(f"owner-{n}")) for n in range(8)]
    results = [await asyncio.to_thread(join) for join in joins]
    winners = {result.owner for result in results}
    assert len(winners) == 1
    (winner,) = winners
    assert all(result.history == [f"http://h/{winner}/1", f"http://h/{winner}/2"] for result in results)
    assert await db(alias, SessionHistoryEntry.objects.using(alias).filter(session_id=session_id).count) == 2


# idempotency keys ---------------------------------------------------------------------------------------
async def test_claim_key_holds_a_key_until_it_expires(alias: str, make_store: StoreFactory) -> None:
    store, other = make_store(), make_store()
    key = "alice\x00" + "k" * 5000  # any length: the row is keyed by a digest
    assert await store.claim_key(key, b"run-1", 60) is None
    assert await other.claim_key(key, b"run-2", 60) == b"run-1"
    keys = IdempotencyKey.objects.using(alias)
    await db(alias, lambda: keys.update(expires_at=timezone.now() - timedelta(seconds=1)))
    assert await other.claim_key(key, b"run-3", 60) is None
    assert await store.claim_key(key, b"run-4", 60) == b"run-3"
    assert await store.claim_key("bob\x00" + "k" * 5000, b"run-5", 60) is None


async def test_expired_keys_are_purged(alias: str, make_store: StoreFactory) -> None:
    store = make_store()
    await store.claim_key("old", b"1", 0.0)
    await store.claim_key("new", b"2", 60)
    assert (await store.trim()).keys == 1
    keys = IdempotencyKey.objects.using(alias).values_list("id", flat=True)
    assert await db(alias, lambda: list(keys)) == [db_ops.key_id("new")]


async def test_racing_key_claims_have_one_winner(alias: str) -> None:
    def claimer(n: int) -> Callable[[DjangoStore], Awaitable[bytes | None]]:
        async def claim(store: DjangoStore) -> bytes | None:
            return await store.claim_key("the-key", b"run-%d" % n, 60)

        return claim

    joins = [in_thread(alias, claimer(n)) for n in range(8)]
    results = [await asyncio.to_thread(join) for join in joins]
    assert results.count(None) == 1
    (held,) = await db(
        alias, lambda: list(IdempotencyKey.objects.using(alias).values_list("value", flat=True))
    )
    assert {bytes(held)} == {result for result in results if result is not None}
