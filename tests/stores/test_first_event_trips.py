"""A new stream's first event waits for the run's creation alone: one round trip to the shared store
(Redis here; the database store in tests/django_store/test_first_event_queries.py), no read of the log,
no batch flush, no wake-up through the store. The rest of a shared store's first event is its
creation's round trip, counted with the runs' in docs/performance.md."""

from __future__ import annotations

import collections

import pytest

from acp_adapters import ACPService
from acp_adapters.core.http import StreamResponse
from tests.helpers import run_body, sse_data
from tests.stores.test_redis_round_trips import CountingConnection, call, settle, stream
from tests.stores.test_redis_round_trips import service as service  # the fixture, counting Redis

__all__ = ["service"]

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


async def test_a_new_streams_first_event_costs_one_round_trip_its_creation(service: ACPService) -> None:
    for _ in range(3):  # warm: connections made, scripts loaded, the notifier listening
        await stream(service, 5)
    await settle()
    CountingConnection.tally.clear()
    response = await call(service, "POST", "/runs", run_body("chunks", "50", mode="stream"))
    assert isinstance(response, StreamResponse)
    first = await response.body.__anext__()
    before_first = collections.Counter(CountingConnection.tally)
    rest = b"".join([chunk async for chunk in response.body])
    assert [event["type"] for event in sse_data(first)] == ["run.created"]
    assert before_first["round_trips"] == 1 and before_first["EVALSHA"] == 1, before_first  # CREATE_RUN
    assert [event["type"] for event in sse_data(rest)][-1] == "run.completed"
