"""A store written against the documented toolkit passes the shipped conformance suite with one line."""

from __future__ import annotations

import uuid

import pytest

from acp_adapters.core.store import EventRecord, ResourceRecord, RunRecord, SessionRecord, Store
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
