"""Sessions: session_id across runs, GET /sessions/{id} and /session/{id}, history resources."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.deployments.base import Target
from tests.helpers import acp_error, create, message, ok_json, output_texts, run_body, run_sync


def new_id() -> str:
    return str(uuid.uuid4())


def get_session(target: Target, session_id: str, path: str = "/sessions") -> dict[str, Any]:
    session = ok_json(target.client.request("GET", f"{path}/{session_id}"), 200, "Session")
    assert session["id"] == session_id
    return dict(session)


def history_texts(target: Target, session: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, text) of each history message, fetched from its URL, which must lie under the mount."""
    out = []
    prefix = target.base_url + "/resources/"
    for url in session["history"]:
        assert url.startswith(prefix), f"{url} is not under {prefix}"
        uuid.UUID(url[len(prefix) :])
        item = ok_json(target.client.request("GET", url[len(target.base_url) :]), 200, "Message")
        text = "".join(p.get("content") or "" for p in item["parts"] if p.get("content_type") == "text/plain")
        out.append((item["role"], text))
    return out


def test_client_made_up_session_id_is_accepted(target: Target) -> None:
    session_id = new_id()
    run = run_sync(target, "sessioner", session_id=session_id)
    assert run["session_id"] == session_id
    assert output_texts(run) == [session_id]


def test_history_echo_sees_earlier_runs_of_the_session(target: Target) -> None:
    session_id = new_id()
    first = run_sync(target, "echo", "one", session_id=session_id)
    assert output_texts(first) == ["one"]
    second = run_sync(target, "history-echo", "two", session_id=session_id)
    assert second["status"] == "completed", second
    assert output_texts(second) == ["one", "one", "two"]
    assert {m["role"] for m in second["output"]} == {"agent/history-echo"}
    third = run_sync(target, "history-echo", "three", session_id=session_id)
    assert output_texts(third) == ["one", "one", "two", "one", "one", "two", "three"]


def test_other_sessions_do_not_leak_in(target: Target) -> None:
    run_sync(target, "echo", "secret", session_id=new_id())
    assert output_texts(run_sync(target, "history-echo", "alone", session_id=new_id())) == ["alone"]
    assert output_texts(run_sync(target, "history-echo", "no session")) == ["no session"]


@pytest.mark.parametrize("path", ["/sessions", "/session"])
def test_session_lists_history_urls_that_resolve_to_messages(target: Target, path: str) -> None:
    session_id = new_id()
    run_sync(target, "echo", "one", session_id=session_id)
    run_sync(target, "history-echo", "two", session_id=session_id)
    session = get_session(target, session_id, path)
    assert history_texts(target, session) == [
        ("user", "one"),
        ("agent/echo", "one"),
        ("user", "two"),
        ("agent/history-echo", "one"),
        ("agent/history-echo", "one"),
        ("agent/history-echo", "two"),
    ]
    other = "/session" if path == "/sessions" else "/sessions"
    assert get_session(target, session_id, other) == session


def test_failed_and_awaiting_runs_do_not_break_the_session(target: Target) -> None:
    session_id = new_id()
    run_sync(target, "echo", "kept", session_id=session_id)
    assert run_sync(target, "failer", "lost", session_id=session_id)["status"] == "failed"
    assert run_sync(target, "awaiter", "pending", session_id=session_id)["status"] == "awaiting"
    texts = output_texts(run_sync(target, "history-echo", "now", session_id=session_id))
    assert texts[:2] == ["kept", "kept"]
    assert texts[-1] == "now"


def test_session_descriptor_with_matching_id_is_accepted(target: Target) -> None:
    session_id = new_id()
    run_sync(target, "echo", "one", session_id=session_id)
    session = get_session(target, session_id)
    body = run_body("history-echo", "two", session_id=session_id, session=session)
    run = ok_json(create(target, body), 200, "Run")
    assert run["session_id"] == session_id
    assert output_texts(run) == ["one", "one", "two"]


def test_session_descriptor_alone_names_the_session(target: Target) -> None:
    session_id = new_id()
    run = ok_json(
        create(target, run_body("sessioner", session={"id": session_id, "history": []})), 200, "Run"
    )
    assert run["session_id"] == session_id
    assert output_texts(run) == [session_id]


def test_session_id_and_descriptor_that_disagree_are_rejected(target: Target) -> None:
    body = run_body("echo", session_id=new_id(), session={"id": new_id(), "history": []})
    acp_error(create(target, body), 422, "invalid_input")


def test_unknown_session_is_404(target: Target) -> None:
    acp_error(target.client.request("GET", f"/sessions/{new_id()}"), 404, "not_found")
    acp_error(target.client.request("GET", f"/session/{new_id()}"), 404, "not_found")


def test_unknown_resource_is_404(target: Target) -> None:
    acp_error(target.client.request("GET", f"/resources/{new_id()}"), 404, "not_found")


@pytest.mark.parametrize("session_id", ["not-a-uuid", "", 42])
def test_invalid_session_id_is_rejected(target: Target, session_id: object) -> None:
    body = {"agent_name": "echo", "input": [message("x")], "session_id": session_id}
    error = acp_error(create(target, body), 422, "invalid_input")
    assert "session_id" in str(error.get("data")), error


def test_history_that_cannot_be_loaded_does_not_break_the_server(target: Target) -> None:
    # A trusted origin (loopback) where nothing listens, and a resource of this server that does not exist.
    history = ["http://127.0.0.1:9/acp/resources/" + new_id(), target.base_url + "/resources/" + new_id()]
    result = create(target, run_body("history-echo", "after", session={"id": new_id(), "history": history}))
    run = ok_json(result, 200, "Run")
    # What cannot be loaded is left out of the history: the run goes on with what it has.
    assert run["status"] == "completed", run
    assert output_texts(run) == ["after"]


def test_session_descriptor_with_a_non_url_history_is_rejected(target: Target) -> None:
    body = run_body("echo", session={"id": new_id(), "history": ["not a url"]})
    acp_error(create(target, body), 422, "invalid_input")
