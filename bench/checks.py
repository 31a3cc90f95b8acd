"""What a correct answer looks like: every response of every scenario is checked here.

A fast wrong answer is a failure, not a result. The checks compare what the protocol fixes (status,
run status, the parts' content types and contents, the order of stream events) and ignore what
servers may legitimately differ in (timestamps, ids, optional fields left out or null).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

__all__ = [
    "A2AStreamChecker",
    "CheckFailed",
    "SSEParser",
    "StreamChecker",
    "a2a_request_body",
    "check_a2a_send",
    "check_run",
    "chunk_text",
    "run_request_body",
]

_EVENT_END = re.compile(rb"\r?\n\r?\n")


class CheckFailed(Exception):
    """An answer was wrong; the message says how."""


def run_request_body(agent: str, text: str, mode: str) -> bytes:
    """The body of ``POST /runs`` with one user message of one text part."""
    body = {
        "agent_name": agent,
        "input": [{"role": "user", "parts": [{"content_type": "text/plain", "content": text}]}],
        "mode": mode,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def chunk_text(index: int) -> str:
    """The content of the ``index``-th part that the ``chunks`` agent yields."""
    return f"{index} "


def _parts(messages: Any) -> list[tuple[Any, Any]]:
    if not isinstance(messages, list):
        raise CheckFailed(f"output is not a list: {str(messages)[:120]}")
    parts: list[tuple[Any, Any]] = []
    for message in messages:
        role = message.get("role", "")
        if not isinstance(role, str) or not role.startswith("agent"):
            raise CheckFailed(f"output message has role {role!r}, not agent/...")
        parts += [(p.get("content_type", "text/plain"), p.get("content")) for p in message.get("parts", [])]
    return parts


def check_run(run: Any, text: str, *, status: str = "completed") -> None:
    """A Run JSON with ``status`` whose output (when completed) is one text part equal to ``text``."""
    if not isinstance(run, dict):
        raise CheckFailed(f"answer is not a Run object: {str(run)[:120]}")
    if run.get("status") != status:
        raise CheckFailed(
            f"run status {run.get('status')!r}, expected {status!r} (error: {run.get('error')})"
        )
    if status == "completed" and _parts(run.get("output")) != [("text/plain", text)]:
        raise CheckFailed(f"output {str(run.get('output'))[:200]} is not the input {text!r}")


class SSEParser:
    """Splits an ``text/event-stream`` body into the JSON of its ``data:`` fields."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> Iterator[Any]:
        """Give the JSON payload of every event completed by ``data`` (comments are skipped)."""
        self._buffer += data
        start = 0
        while match := _EVENT_END.search(self._buffer, start):
            block = self._buffer[start : match.start()]
            start = match.end()
            payload = [line[5:].lstrip(b" ") for line in block.splitlines() if line.startswith(b"data:")]
            if payload:
                try:
                    yield json.loads(b"\n".join(payload))
                except ValueError:
                    raise CheckFailed(f"event data is not JSON: {block[:120]!r}") from None
        self._buffer = self._buffer[start:]

    @property
    def leftover(self) -> bytes:
        """Bytes after the last complete event (must be empty when the stream ends)."""
        return self._buffer


class StreamChecker:
    """Checks the events of one ``chunks`` run with ``n`` parts, in order, as they arrive.

    Expected: run.created, run.in-progress, message.created (empty, or with the first parts),
    message.part x n (contents "0 ", "1 ", ...), message.completed (the whole message), run.completed
    (the whole output).
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.events = 0
        self.parts = 0
        self._stage = 0  # index into _HEAD, then parts, then the tail

    def feed(self, event: Any) -> None:
        """Check the next event."""
        self.events += 1
        kind = event.get("type") if isinstance(event, dict) else None
        if self._stage < 3:
            expected = ("run.created", "run.in-progress", "message.created")[self._stage]
            if kind != expected:
                raise CheckFailed(
                    f"event {self.events} is {kind!r}, expected {expected!r}: {str(event)[:160]}"
                )
            if kind == "message.created":
                self._check_created(event["message"].get("parts") or [])
            self._stage += 1
        elif kind == "message.part":
            if self._stage != 3:
                raise CheckFailed(f"message.part after {kind!r}")
            part = event.get("part", {})
            if (
                part.get("content") != chunk_text(self.parts)
                or part.get("content_type", "text/plain") != "text/plain"
            ):
                raise CheckFailed(
                    f"part {self.parts} is {part.get('content')!r}, expected {chunk_text(self.parts)!r}"
                )
            self.parts += 1
        elif kind == "message.completed" and self._stage == 3:
            self._check_all_parts(event["message"].get("parts"), "message.completed")
            self._stage = 4
        elif kind == "run.completed" and self._stage == 4:
            run = event["run"]
            if run.get("status") != "completed":
                raise CheckFailed(f"run.completed carries status {run.get('status')!r}")
            output = run.get("output") or []
            self._check_all_parts([p for m in output for p in m.get("parts", [])], "run.completed output")
            self._stage = 5
        else:
            raise CheckFailed(f"unexpected event {self.events}: {kind!r} at stage {self._stage}")

    def _check_created(self, parts: list[Any]) -> None:
        # The spec wants a message's parts non-empty, so a server may put the first part(s) in
        # message.created; each part still comes as a message.part event after it.
        contents = [p.get("content") for p in parts]
        if contents != [chunk_text(i) for i in range(len(contents))]:
            raise CheckFailed(f"message.created carries parts {contents[:5]} that are not the first ones")

    def _check_all_parts(self, parts: Any, where: str) -> None:
        if self.parts != self.n:
            raise CheckFailed(f"{where} after {self.parts} parts, expected {self.n}")
        contents = [p.get("content") for p in parts or []]
        if contents != [chunk_text(i) for i in range(self.n)]:
            raise CheckFailed(f"{where} does not hold the {self.n} parts in order")

    def finish(self) -> None:
        """The stream has ended: it must have ended with run.completed."""
        if self._stage != 5:
            raise CheckFailed(
                f"stream ended after {self.events} events ({self.parts} parts) without run.completed"
            )


# A2A (issue 16): JSON-RPC, A2A 1.0 ------------------------------------------------------------------
def a2a_request_body(method: str, text: str) -> bytes:
    """A JSON-RPC request of ``method`` (``SendMessage``, ``SendStreamingMessage``) with one user
    message of one text part (the same message each time: neither server minds)."""
    message = {"messageId": "bench-message", "role": "ROLE_USER", "parts": [{"text": text}]}
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"message": message}}
    return json.dumps(body, separators=(",", ":")).encode()


def _result(answer: Any) -> Any:
    if not isinstance(answer, dict) or "result" not in answer:
        raise CheckFailed(f"not a JSON-RPC result: {str(answer)[:200]}")
    return answer["result"]


def _state(status: Any) -> Any:
    return status.get("state") if isinstance(status, dict) else None


def _texts(parts: Any) -> list[Any]:
    return [part.get("text") for part in parts or []]


def check_a2a_send(answer: Any, text: str) -> None:
    """A ``SendMessage`` answer: the task, completed, its artifacts one text part equal to ``text``."""
    task = _result(answer).get("task") or {}
    if _state(task.get("status")) != "TASK_STATE_COMPLETED":
        raise CheckFailed(f"task state {_state(task.get('status'))!r}, expected TASK_STATE_COMPLETED")
    texts = [t for artifact in task.get("artifacts") or [] for t in _texts(artifact.get("parts"))]
    if texts != [text]:
        raise CheckFailed(f"artifacts {str(task.get('artifacts'))[:200]} are not the input {text!r}")


class A2AStreamChecker:
    """Checks the events of one A2A stream of ``chunks`` with ``n`` parts, in order, as they arrive.

    Expected: the task (submitted), a status update (working), n artifact updates of one artifact
    (texts "0 ", "1 ", ...; the first opens it, the next ones append), a status update (completed).
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.events = 0
        self.parts = 0
        self._stage = 0  # 0: the task, 1: working, 2: parts, 3: completed
        self._artifact: Any = None

    def feed(self, event: Any) -> None:
        """Check the next event (a JSON-RPC response whose result is a StreamResponse)."""
        self.events += 1
        result = _result(event)
        if self._stage == 0:
            if _state((result.get("task") or {}).get("status")) != "TASK_STATE_SUBMITTED":
                raise CheckFailed(f"event 1 is not the submitted task: {str(result)[:160]}")
            self._stage = 1
        elif "artifactUpdate" in result and self._stage == 2:
            update = result["artifactUpdate"]
            artifact = update.get("artifact") or {}
            if _texts(artifact.get("parts")) != [chunk_text(self.parts)]:
                expected = chunk_text(self.parts)
                raise CheckFailed(f"chunk {self.parts} is {artifact.get('parts')}, expected {expected!r}")
            if bool(update.get("append")) != (self.parts > 0):
                raise CheckFailed(f"chunk {self.parts} has append {update.get('append')!r}")
            if self._artifact is None:
                self._artifact = artifact.get("artifactId")
            elif artifact.get("artifactId") != self._artifact:
                raise CheckFailed(f"chunk {self.parts} is of another artifact")
            self.parts += 1
        elif "statusUpdate" in result and self._stage in (1, 2):
            state = _state(result["statusUpdate"].get("status"))
            expected = "TASK_STATE_WORKING" if self._stage == 1 else "TASK_STATE_COMPLETED"
            if state != expected:
                raise CheckFailed(f"event {self.events} is status {state!r}, expected {expected!r}")
            if self._stage == 2 and self.parts != self.n:
                raise CheckFailed(f"completed after {self.parts} chunks, expected {self.n}")
            self._stage += 1
        else:
            raise CheckFailed(f"unexpected event {self.events} at stage {self._stage}: {str(result)[:160]}")

    def finish(self) -> None:
        """The stream has ended: it must have ended with the task completed."""
        if self._stage != 3:
            raise CheckFailed(f"stream ended after {self.events} events ({self.parts} chunks), not completed")
