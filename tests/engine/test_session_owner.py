"""Session ownership: a session is its first run's owner's from the moment that run names it.

Another identity (the anonymous caller included) naming it gets the answer a missing session gets,
and writes nothing into it, even while the owner's first run is still going.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from acp_adapters import AgentRegistry, Context
from acp_adapters.core.store import SessionRecord
from acp_adapters.models import Message, MessageAwaitRequest
from tests.helpers import resume_body, run_body

pytestmark = pytest.mark.anyio


def session_registry() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    async def ask(input: list[Message], context: Context) -> AsyncIterator[Any]:
        yield MessageAwaitRequest(message=Message(parts=[{"content": "more?"}]))
        yield "done"

    @agents.agent()
    async def echo(input: list[Message], context: Context) -> AsyncIterator[Any]:
        for message in input:
            yield message

    return agents


def in_session(agent: str, session_id: str, text: str = "hi") -> dict[str, Any]:
    return {**run_body(agent, text), "session_id": session_id}


def missing(session_id: str) -> dict[str, Any]:
    return {"code": "not_found", "message": f"session {session_id} not found"}


async def test_another_identity_cannot_take_over_a_session_before_its_first_run_ends(make_call: Any) -> None:
    """The race of the issue: alice's first run in S is still awaiting when bob names S."""
    call = make_call(session_registry())
    session_id = str(uuid.uuid4())
    status, first = await call.json("POST", "/runs", in_session("ask", session_id), owner="alice")
    assert (status, first["status"]) == (200, "awaiting")

    for intruder in ("bob", None):
        status, error = await call.json("POST", "/runs", in_session("echo", session_id), owner=intruder)
        assert (status, error) == (404, missing(session_id))
        # The same answer as a session nobody has.
        other = str(uuid.uuid4())
        status, _ = await call.json("GET", f"/sessions/{other}", owner=intruder)
        assert status == 404
        descriptor = {"id": session_id, "history": ["http://test/acp/resources/" + str(uuid.uuid4())]}
        body = {**run_body("echo"), "session": descriptor}
        status, error = await call.json("POST", "/runs", body, owner=intruder)
        assert (status, error) == (404, missing(session_id))

    status, done = await call.json("POST", f"/runs/{first['run_id']}", resume_body("x"), owner="alice")
    assert (status, done["status"]) == (200, "completed")
    status, session = await call.json("GET", f"/sessions/{session_id}", owner="alice")
    assert status == 200
    assert len(session["history"]) == 2  # alice's input and her run's output, nobody else's
    record = await call.service.store.get_session(uuid.UUID(session_id))
    assert record is not None and record.owner == "alice"
    assert (await call.json("GET", f"/sessions/{session_id}", owner="bob"))[0] == 404
    # Alice goes on in her session.
    status, again = await call.json("POST", "/runs", in_session("echo", session_id), owner="alice")
    assert (status, again["status"]) == (200, "completed")


async def test_racing_identities_naming_a_new_session_one_wins(make_call: Any) -> None:
    call = make_call(session_registry())
    session_id = str(uuid.uuid4())
    owners = ["alice", "bob", "carol", None, "dave"]
    results = await asyncio.gather(
        *(call.json("POST", "/runs", in_session("echo", session_id), owner=owner) for owner in owners)
    )
    statuses = [status for status, _ in results]
    assert sorted(statuses) == [200, 404, 404, 404, 404]
    winner = owners[statuses.index(200)]
    record = await call.service.store.get_session(uuid.UUID(session_id))
    assert record is not None and record.owner == winner
    assert len(record.history) == 2  # only the winner's run was added


async def test_an_anonymous_session_is_not_an_identified_callers_and_back(make_call: Any) -> None:
    call = make_call(session_registry())
    anonymous_session, alices = str(uuid.uuid4()), str(uuid.uuid4())
    assert (await call.json("POST", "/runs", in_session("echo", anonymous_session)))[0] == 200
    assert (await call.json("POST", "/runs", in_session("echo", alices), owner="alice"))[0] == 200
    status, error = await call.json("POST", "/runs", in_session("echo", anonymous_session), owner="alice")
    assert (status, error) == (404, missing(anonymous_session))
    status, error = await call.json("POST", "/runs", in_session("echo", alices))
    assert (status, error) == (404, missing(alices))
    # Anonymous callers share the anonymous session (there is no one to tell apart).
    assert (await call.json("POST", "/runs", in_session("echo", anonymous_session)))[0] == 200


async def test_the_owners_descriptor_replaces_history_and_state(make_call: Any) -> None:
    call = make_call(session_registry())
    session_id = str(uuid.uuid4())
    assert (await call.json("POST", "/runs", in_session("echo", session_id), owner="alice"))[0] == 200
    _, kept = await call.json("GET", f"/sessions/{session_id}", owner="alice")
    assert len(kept["history"]) == 2
    descriptor = {"id": session_id, "history": kept["history"][:1]}
    body = {**run_body("echo", "again"), "session": descriptor}
    assert (await call.json("POST", "/runs", body, owner="alice"))[0] == 200
    _, replaced = await call.json("GET", f"/sessions/{session_id}", owner="alice")
    assert replaced["history"][0] == kept["history"][0]
    assert len(replaced["history"]) == 3  # the one it forwarded, then this run's input and output


async def test_a_run_naming_no_session_claims_none(make_call: Any) -> None:
    call = make_call(session_registry())
    _, run = await call.run("echo", owner="alice")
    session_id = run["session_id"]
    assert await call.service.store.get_session(uuid.UUID(session_id)) is None
    assert (await call.json("GET", f"/sessions/{session_id}", owner="alice"))[0] == 404
    # Nothing was claimed: the id is free for whoever names it first.
    assert (await call.json("POST", "/runs", in_session("echo", session_id), owner="bob"))[0] == 200


async def test_a_session_lost_to_another_owner_meanwhile_does_not_fail_the_run(
    make_call: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Alice's session expires while her run awaits, and bob claims its id: her run still completes,
    and writes nothing into bob's session."""
    call = make_call(session_registry())
    session_id = str(uuid.uuid4())
    _, run = await call.json("POST", "/runs", in_session("ask", session_id), owner="alice")
    await call.service.store.put_session(SessionRecord(id=uuid.UUID(session_id), owner="bob"))
    status, done = await call.json("POST", f"/runs/{run['run_id']}", resume_body("x"), owner="alice")
    assert (status, done["status"]) == (200, "completed")
    record = await call.service.store.get_session(uuid.UUID(session_id))
    assert record is not None and (record.owner, record.history) == ("bob", [])
    assert "belongs to another owner" in caplog.text
