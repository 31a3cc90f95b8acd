"""The one mapping between ACP and A2A: a task is a run, a context is a session.

Rules this module keeps (docs/a2a.md has the table):

* A task's id is its run's id, its context id the run's session id.
* Statuses: ``created`` is ``submitted``; ``in-progress`` (and ``cancelling``, which A2A does not
  have) ``working``; ``awaiting`` ``input-required``, with the await request's message as the status
  message; ``completed``, ``failed`` (with the error's message) and ``cancelled`` are ``completed``,
  ``failed`` and ``canceled``.
* Each output message of a run is an artifact of its task (id ``{run id}-{index}``) holding its
  unnamed parts; each named part (an ACP artifact) is an artifact of its own, with that name (id
  ``{run id}-{index}-{part index}``). Streams and reads give the same ids, so a client that
  gathers stream chunks ends up with what ``GetTask`` answers.
* Parts: text is text (its media type kept unless ``text/plain``), base64 content is ``raw``, a URL
  is ``url``, JSON content (``application/json``, ``*+json``) that parses is ``data``; a part's name is
  its ``filename``; ACP metadata (citation, trajectory) is the part's ``metadata``. The reverse for
  what a client sends.
* Pure: no I/O, no engine; :mod:`.tasks` reads and writes runs.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from acp_adapters.core import models as acp
from acp_adapters.core.models import RunStatus, utc_now

from .errors import InvalidParams
from .models import (
    Artifact,
    Message,
    Part,
    Role,
    StreamResponse,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)

__all__ = [
    "STATE_OF",
    "EventMapper",
    "a2a_message",
    "a2a_part",
    "acp_message",
    "acp_part",
    "artifacts_of",
    "status_of",
    "task_of",
]

#: The A2A state of each run status.
STATE_OF: dict[RunStatus, TaskState] = {
    RunStatus.CREATED: TaskState.SUBMITTED,
    RunStatus.IN_PROGRESS: TaskState.WORKING,
    RunStatus.CANCELLING: TaskState.WORKING,
    RunStatus.AWAITING: TaskState.INPUT_REQUIRED,
    RunStatus.COMPLETED: TaskState.COMPLETED,
    RunStatus.FAILED: TaskState.FAILED,
    RunStatus.CANCELLED: TaskState.CANCELED,
}

_ACP_METADATA = ("citation", "trajectory")


def _is_json_type(media: str) -> bool:
    media = media.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _timestamp(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


# parts and messages -------------------------------------------------------------------------------
def a2a_part(part: acp.MessagePart) -> Part:
    """An ACP message part as an A2A part."""
    media = part.content_type or "text/plain"
    metadata = part.metadata.model_dump(mode="json", exclude_none=True) if part.metadata else None
    common: dict[str, Any] = {"filename": part.name, "metadata": metadata}
    if part.content_url is not None:
        return Part(url=str(part.content_url), media_type=media, **common)
    content = part.content or ""
    if part.content_encoding == "base64":
        return Part(raw=content, media_type=media, **common)
    if _is_json_type(media) and content:
        try:
            value = json.loads(content)
        except ValueError:
            value = None
        if value is not None:
            return Part(data=value, media_type=media, **common)
    return Part(text=content, media_type=None if media == "text/plain" else media, **common)


def acp_part(part: Part) -> acp.MessagePart:
    """An A2A part as an ACP message part; :class:`InvalidParams` if ACP cannot hold it (a bad URL)."""
    fields: dict[str, Any] = {"name": part.filename}
    if part.metadata and part.metadata.get("kind") in _ACP_METADATA:
        fields["metadata"] = part.metadata
    if part.text is not None:
        fields.update(content=part.text, content_type=part.media_type or "text/plain")
    elif part.raw is not None:
        raw = part.raw
        if "-" in raw or "_" in raw:  # the URL-safe alphabet, which protobuf's JSON accepts too
            raw = base64.b64encode(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))).decode()
        fields.update(
            content=raw, content_encoding="base64", content_type=part.media_type or "application/octet-stream"
        )
    elif part.url is not None:
        fields.update(content_url=part.url, content_type=part.media_type or "application/octet-stream")
    else:
        data = json.dumps(part.data, separators=(",", ":"), ensure_ascii=False)
        fields.update(content=data, content_type=part.media_type or "application/json")
    try:
        return acp.MessagePart.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'part'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise InvalidParams(f"a message part ACP cannot carry: {problems}") from None


def acp_message(message: Message) -> acp.Message:
    """A message a client sent, as the ACP message a run gets."""
    role = "user" if message.role is Role.USER else "agent"
    return acp.Message(role=role, parts=[acp_part(part) for part in message.parts])


def a2a_message(
    message: acp.Message, *, message_id: str, task_id: str, context_id: str, role: Role = Role.AGENT
) -> Message | None:
    """An ACP message as an A2A message of a task (``None`` for a message without parts, which A2A
    cannot carry)."""
    if not message.parts:
        return None
    return Message(
        message_id=message_id,
        context_id=context_id,
        task_id=task_id,
        role=role,
        parts=[a2a_part(part) for part in message.parts],
    )


# artifacts ----------------------------------------------------------------------------------------
def _unnamed_id(run_id: str, index: int) -> str:
    return f"{run_id}-{index}"


def _named_id(run_id: str, index: int, part_index: int) -> str:
    return f"{run_id}-{index}-{part_index}"


def artifacts_of(run_id: str, index: int, message: acp.Message) -> list[Artifact]:
    """The artifacts of output message ``index``: one for its unnamed parts, one per named part, in the
    order of their first part."""
    artifacts: list[Artifact] = []
    unnamed: Artifact | None = None
    for part_index, part in enumerate(message.parts):
        if part.name:
            artifact_id = _named_id(run_id, index, part_index)
            artifacts.append(Artifact(artifact_id=artifact_id, name=part.name, parts=[a2a_part(part)]))
        elif unnamed is None:
            unnamed = Artifact(artifact_id=_unnamed_id(run_id, index), parts=[a2a_part(part)])
            artifacts.append(unnamed)
        else:
            unnamed.parts.append(a2a_part(part))
    return artifacts


# tasks --------------------------------------------------------------------------------------------
def _context_of(run: acp.Run) -> str:
    return str(run.session_id or run.run_id)


def status_of(run: acp.Run, *, timestamp: str | None = None) -> TaskStatus:
    """The A2A status of ``run``: its state, the message that goes with it, its time."""
    state = STATE_OF[run.status]
    task_id, context_id = str(run.run_id), _context_of(run)
    message: Message | None = None
    if run.status is RunStatus.AWAITING and run.await_request is not None:
        asked = run.await_request.message
        data = asked.__pydantic_serializer__.to_json(asked, exclude_none=True).decode()
        message_id = str(uuid.uuid5(run.run_id, "input-required:" + data))
        message = a2a_message(asked, message_id=message_id, task_id=task_id, context_id=context_id)
    elif run.status is RunStatus.FAILED and run.error is not None:
        message = Message(
            message_id=str(uuid.uuid5(run.run_id, "failed")),
            context_id=context_id,
            task_id=task_id,
            role=Role.AGENT,
            parts=[Part(text=run.error.message)],
            metadata={"code": run.error.code.value, **({"data": run.error.data} if run.error.data else {})},
        )
    if timestamp is None:
        when = run.finished_at if run.status.is_terminal and run.finished_at else None
        timestamp = _timestamp(when) if when is not None else None
    return TaskStatus(state=state, message=message, timestamp=timestamp)


def task_of(run: acp.Run, *, history: Iterable[Message] = (), with_artifacts: bool = True) -> Task:
    """``run`` as an A2A task; ``history`` is what the caller knows of the task's messages."""
    run_id = str(run.run_id)
    artifacts: list[Artifact] | None = None
    if with_artifacts:
        artifacts = [artifact for i, m in enumerate(run.output) for artifact in artifacts_of(run_id, i, m)]
    listed = list(history)
    return Task(
        id=run_id,
        context_id=_context_of(run),
        status=status_of(run),
        artifacts=artifacts or None,
        history=listed or None,
    )


# streams ------------------------------------------------------------------------------------------
class EventMapper:
    """Turns a run's ACP events, in log order, into A2A stream items.

    ``run.created`` becomes the task (``submitted``); every other ``run.*`` event a status update; each
    ``message.part`` an artifact update (the first part of a message's unnamed artifact opens it, the
    next ones are appended to it); ``message.created``, ``message.completed`` and ``generic`` events
    carry nothing A2A has a place for. Fed events from the start of the log without emitting
    (:meth:`fold`), it keeps the task as it stands, to begin a stream that joins a run midway.
    """

    def __init__(self, history: Iterable[Message] = ()) -> None:
        self.task: Task | None = None
        self._history = list(history)
        self._messages = -1  # index of the current output message
        self._parts = 0  # parts of the current output message so far
        self._unnamed_open = False
        self._artifacts: dict[str, Artifact] = {}

    @property
    def final(self) -> bool:
        """Whether the task awaits input or has ended: nothing follows on this stream."""
        return self.task is not None and (
            self.task.status.state.is_terminal or self.task.status.state is TaskState.INPUT_REQUIRED
        )

    def fold(self, data: Iterable[bytes]) -> None:
        """Take in events without emitting them (the log so far)."""
        for event in data:
            self.items(event)

    def snapshot(self) -> Task:
        """The task as the events so far show it, its artifacts included."""
        assert self.task is not None, "the log begins with run.created"
        artifacts = list(self._artifacts.values())
        return self.task.model_copy(update={"artifacts": artifacts or None, "history": self._history or None})

    def items(self, data: bytes) -> list[StreamResponse]:
        """The stream items of one event (its JSON as logged)."""
        event = json.loads(data)
        kind = event.get("type", "")
        if kind.startswith("run."):
            return self._run_event(kind, acp.Run.model_validate(event["run"]))
        if kind == "message.created":
            self._messages += 1
            self._parts = 0
            self._unnamed_open = False
        elif kind == "message.part" and self.task is not None:
            return [self._part(acp.MessagePart.model_validate(event["part"]))]
        return []

    def _run_event(self, kind: str, run: acp.Run) -> list[StreamResponse]:
        if kind == "run.created" or self.task is None:
            self.task = task_of(run, history=self._history, with_artifacts=False)
            return [StreamResponse(task=self.task)]
        status = status_of(run, timestamp=_timestamp(utc_now()))
        self.task = self.task.model_copy(update={"status": status})
        update = TaskStatusUpdateEvent(task_id=self.task.id, context_id=self.task.context_id, status=status)
        return [StreamResponse(status_update=update)]

    def _part(self, part: acp.MessagePart) -> StreamResponse:
        assert self.task is not None
        index, part_index = max(self._messages, 0), self._parts
        self._parts += 1
        wire = a2a_part(part)
        append = False
        if part.name:
            artifact = Artifact(
                artifact_id=_named_id(self.task.id, index, part_index), name=part.name, parts=[wire]
            )
            self._artifacts[artifact.artifact_id] = artifact
        else:
            artifact_id = _unnamed_id(self.task.id, index)
            append = self._unnamed_open
            self._unnamed_open = True
            artifact = Artifact(artifact_id=artifact_id, parts=[wire])
            kept = self._artifacts.get(artifact_id)
            if kept is None:
                self._artifacts[artifact_id] = Artifact(artifact_id=artifact_id, parts=[wire])
            else:
                kept.parts.append(wire)
        update = TaskArtifactUpdateEvent(
            task_id=self.task.id, context_id=self.task.context_id, artifact=artifact, append=append or None
        )
        return StreamResponse(artifact_update=update)
