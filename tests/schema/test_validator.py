"""The spec validator itself: it must reject what the spec rejects, or the contract suite proves nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.schema import SchemaError, assert_valid, fast_validator, openapi_path, schema_errors

RUN_ID = "3c90c3cc-0d44-4b50-8888-8dd25736052a"


def a_run(**changes: Any) -> dict[str, Any]:
    run: dict[str, Any] = {
        "agent_name": "echo",
        "session_id": RUN_ID,
        "run_id": RUN_ID,
        "status": "completed",
        "await_request": None,
        "output": [
            {
                "role": "agent/echo",
                "parts": [{"content_type": "text/plain", "content": "hi", "metadata": None}],
                "created_at": "2025-01-01T00:00:00Z",
                "completed_at": "2025-01-01T00:00:00.123456Z",
            }
        ],
        "error": None,
        "created_at": "2025-01-01T00:00:00Z",
        "finished_at": "2025-01-01T00:00:01Z",
    }
    run.update(changes)
    return run


def test_the_spec_is_found() -> None:
    assert openapi_path().name == "openapi.yaml"


def test_a_valid_run_and_its_event_validate() -> None:
    assert_valid(a_run(), "Run")
    assert_valid({"type": "run.completed", "run": a_run()}, "Event")
    assert fast_validator("Run").is_valid(a_run())
    assert fast_validator("Event").is_valid({"type": "run.completed", "run": a_run()})


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"created_at": "2025-01-01T00:00:00+00:00"}, "created_at"),
        ({"created_at": "2025-01-01 00:00:00Z"}, "created_at"),
        ({"finished_at": None}, "finished_at"),
        ({"session_id": None}, "session_id"),
        ({"run_id": "not-a-uuid"}, "run_id"),
        ({"status": "done"}, "status"),
        ({"error": {"code": "teapot", "message": "x"}}, "error"),
        ({"output": [{"role": "robot", "parts": [{"content": "x"}]}]}, "output/0/role"),
        ({"output": [{"role": "agent/echo", "parts": []}]}, "output/0/parts"),
        (
            {"output": [{"role": "user", "parts": [{"content": "x", "content_url": "http://a/b"}]}]},
            "output/0/parts/0",
        ),
    ],
)
def test_what_the_spec_forbids_is_rejected(changes: dict[str, Any], where: str) -> None:
    errors = schema_errors(a_run(**changes), "Run")
    assert any(line.startswith(where) for line in errors), errors
    # The fast validator, which alone decides what it accepts, rejects it too.
    assert not fast_validator("Run").is_valid(a_run(**changes))


def test_nullable_fields_accept_null() -> None:
    assert_valid({"code": "not_found", "message": "no", "data": None}, "Error")
    assert_valid(a_run(error=None, await_request=None), "Run")
    assert_valid({"kind": "citation", "url": None, "start_index": None}, "CitationMetadata")


def test_event_types_are_closed() -> None:
    with pytest.raises(SchemaError):
        assert_valid({"type": "run.exploded", "run": a_run()}, "Event")
    assert not fast_validator("Event").is_valid({"type": "run.exploded", "run": a_run()})


def test_the_fast_validator_checks_the_formats_the_reference_checks_and_no_other() -> None:
    # What only the formats reject (date-time with an offset, uuid, uri) ...
    assert not fast_validator("Run").is_valid(a_run(created_at="2025-01-01T00:00:00+00:00"))
    assert not fast_validator("Run").is_valid(a_run(run_id="not-a-uuid"))
    assert not fast_validator("Session").is_valid({"id": RUN_ID, "history": ["/acp/resources/" + RUN_ID]})
    # ... and not a format the reference does not check (a Person's email, an agent author's).
    person = {"name": "A", "email": "not an email"}
    assert schema_errors(person, "Person") == []
    assert fast_validator("Person").is_valid(person)


def test_session_history_needs_absolute_urls() -> None:
    assert_valid({"id": RUN_ID, "history": ["http://127.0.0.1:8000/acp/resources/" + RUN_ID]}, "Session")
    assert fast_validator("Session").is_valid(
        {"id": RUN_ID, "history": ["http://127.0.0.1:8000/acp/resources/" + RUN_ID]}
    )
    with pytest.raises(SchemaError):
        assert_valid({"id": RUN_ID, "history": ["/acp/resources/" + RUN_ID]}, "Session")
