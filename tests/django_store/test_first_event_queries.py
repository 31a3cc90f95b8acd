"""A new stream's first event waits for the run's creation alone: one statement to PostgreSQL (one
transaction), no read of the log, no batch flush, no wake-up through the database. The rest of the
database store's first event is that statement's round trip and commit (docs/performance.md)."""

from __future__ import annotations

import pytest

from acp_adapters.core.http import StreamResponse
from tests.django_store.test_query_counts import Client, QueryCounter
from tests.django_store.test_query_counts import client as client  # the fixture, counting statements
from tests.helpers import run_body, sse_data

__all__ = ["client"]

pytestmark = pytest.mark.anyio


async def test_a_new_streams_first_event_costs_one_statement_its_creation(
    client: tuple[Client, QueryCounter],
) -> None:
    call, counter = client
    with counter.counting() as counted:
        response = await call("POST", "/runs", run_body("parts", "50", mode="stream"))
        assert isinstance(response, StreamResponse)
        first = await response.body.__anext__()
        before_first = list(counted.statements)
    rest = b"".join([chunk async for chunk in response.body])
    await call.settled()
    assert [event["type"] for event in sse_data(first)] == ["run.created"]
    assert len(before_first) == 1 and not before_first[0][1], before_first  # on its own: autocommit
    assert "INSERT" in before_first[0][0].upper()
    assert [event["type"] for event in sse_data(rest)][-1] == "run.completed"
