"""What every floor parses and answers, whatever the framework."""

from __future__ import annotations

import json
import uuid
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from bench.checks import chunk_text

__all__ = ["AGENTS", "RUN_ID", "CreateRun", "async_run", "completed_run", "parse", "stream_events"]

RUN_ID = str(uuid.UUID(int=1))
_NOW = "2025-01-01T00:00:00Z"
_MAX_PARTS = 100_000


class Part(BaseModel):
    content_type: str = "text/plain"
    content: str | None = None


class Message(BaseModel):
    role: str
    parts: list[Part]


class CreateRun(BaseModel):
    """The small model a floor parses ``POST /runs`` into."""

    agent_name: str
    input: list[Message]
    mode: str = "sync"


def _run(status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "agent_name": "echo",
        "session_id": None,
        "run_id": RUN_ID,
        "status": status,
        "await_request": None,
        "output": output,
        "error": None,
        "created_at": _NOW,
        "finished_at": _NOW if status == "completed" else None,
    }


_ECHO_OUTPUT = [{"role": "agent/echo", "parts": [{"content_type": "text/plain", "content": "hi"}]}]

#: ``GET /agents`` (the harness's readiness probe).
AGENTS = json.dumps({"agents": [{"name": "echo"}, {"name": "chunks"}]}).encode()


def parse(body: bytes) -> CreateRun:
    """Validate a create request as every ACP server must."""
    return CreateRun.model_validate_json(body)


@lru_cache(maxsize=1)
def completed_run() -> bytes:
    """The finished echo run of the input ``hi``."""
    return json.dumps(_run("completed", _ECHO_OUTPUT)).encode()


@lru_cache(maxsize=1)
def async_run() -> bytes:
    """The 202 answer to an async create."""
    return json.dumps(_run("created", [])).encode()


def _sse(index: int, event: dict[str, Any]) -> bytes:
    return f"id: {index}\ndata: {json.dumps(event)}\n\n".encode()


@lru_cache(maxsize=8)
def stream_events(n: int) -> tuple[bytes, ...]:
    """The SSE events of a ``chunks`` run of ``n`` parts, each framed once."""
    n = min(n, _MAX_PARTS)
    parts = [{"content_type": "text/plain", "content": chunk_text(i)} for i in range(n)]
    message = {"role": "agent/chunks", "parts": parts}
    events: list[dict[str, Any]] = [
        {"type": "run.created", "run": _run("created", [])},
        {"type": "run.in-progress", "run": _run("in-progress", [])},
        {"type": "message.created", "message": {"role": "agent/chunks", "parts": []}},
        *({"type": "message.part", "part": part} for part in parts),
        {"type": "message.completed", "message": message},
        {"type": "run.completed", "run": _run("completed", [message])},
    ]
    return tuple(_sse(i, event) for i, event in enumerate(events))


def chunks_count(request: CreateRun) -> int:
    """N, from the text of the last input message (as the ``chunks`` agent reads it)."""
    try:
        return int("".join(p.content or "" for p in request.input[-1].parts).strip())
    except ValueError:
        return 10
