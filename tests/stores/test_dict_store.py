"""A store written against the documented toolkit passes the shipped conformance suite with one line."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid

import pytest

from acp_adapters.core.models import Run
from acp_adapters.core.store import EventRecord, ResourceRecord, RunRecord, SessionRecord, Signal, Store
from acp_adapters.testing.stores import StoreConformance
from tests.stores.dict_store import DictStore


class TestDictStore(StoreConformance):
    store_class = DictStore


class HalfStore(Store):
    """Implements the abstract methods, and neither ``write_session`` nor the methods derived from it."""

    async def create_run(self, record: RunRecord, first_event: EventRecord) -> None: ...
    async def get_run(self, run_id: uuid.UUID) -> RunRecord | None: ...
    async def write_run(self, *args: object, **kwargs: object) -> RunRecord | None: ...
    async def events_from(self, run_id: uuid.UUID, start: int) -> list[EventRecord]:
        return []

    async def get_session(self, session_id: uuid.UUID) -> SessionRecord | None: ...
    async def put_resource(
        self, resource_id: uuid.UUID, data: bytes, *, owner: str | None = None
    ) -> None: ...
    async def get_resource(self, resource_id: uuid.UUID) -> ResourceRecord | None: ...
    async def claim_key(self, key: str, value: bytes, ttl: float) -> bytes | None: ...


class SharedHalfStore(DictStore):
    shared = True


def test_a_store_missing_a_primitive_is_refused_when_made() -> None:
    with pytest.raises(TypeError, match=r"HalfStore must implement write_session \(or claim_session"):
        HalfStore()
    # A shared store delivers signals across processes: the in-process defaults will not do.
    with pytest.raises(TypeError, match="SharedHalfStore must implement send_signal and receive_signal"):
        SharedHalfStore()


def test_the_dict_store_is_small() -> None:
    from tests.stores import dict_store

    assert dict_store.__file__ is not None
    with open(dict_store.__file__, encoding="utf-8") as source:
        assert len(source.readlines()) < 150


class PolledDictStore(DictStore):
    """The dict store as if shared: its readers look again every ``poll_interval``."""

    shared = True

    async def send_signal(self, run_id: uuid.UUID, signal: Signal) -> None:
        await super().send_signal(run_id, signal)

    async def receive_signal(self, run_id: uuid.UUID) -> Signal:
        return await super().receive_signal(run_id)


@pytest.mark.anyio
async def test_a_reader_of_a_shared_store_sees_what_another_process_wrote() -> None:
    store = PolledDictStore()
    run = Run(agent_name="echo")
    created = EventRecord("run.created", b'{"type":"run.created"}')
    await store.create_run(RunRecord(run=run), created)
    reader = asyncio.create_task(store.read_events(run.run_id, 1, timeout=5))
    await asyncio.sleep(0.2)
    assert not reader.done()
    # Written as another process would: nothing of this instance is woken.
    store._events[run.run_id].append(EventRecord("generic", b'{"type":"generic"}'))
    started = time.monotonic()
    assert await asyncio.wait_for(reader, 2) == [EventRecord("generic", b'{"type":"generic"}')]
    assert time.monotonic() - started < 4 * store.poll_interval + 0.2


def test_the_suite_is_not_imported_with_the_package() -> None:
    code = "import sys, acp_adapters, acp_adapters.testing; print('pytest' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
