"""The A2A 0.3 dialect: what 0.3 clients send, read into the 1.0 models, and the 1.0 models written
as 0.3 JSON.

0.3 differs from 1.0 on the wire only: ``kind`` discriminators (``"kind": "task"``, ``"text"``,
``"status-update"``...), states and roles in lower case (``input-required``, ``user``), file parts as
``{"kind": "file", "file": {"bytes" | "uri", "mimeType", "name"}}``, data parts holding an object, a
``final`` flag on status updates, and ``configuration.blocking`` for 1.0's
``returnImmediately`` (blocking unless it says ``false``).

Rules this module keeps:

* Everything past the wire is 1.0: a 0.3 request becomes the 1.0 request it means, and the service
  answers it in 1.0 models; only here are they written as 0.3.
* What 0.3 cannot carry is said plainly: a data part that is not an object becomes a text part of
  its JSON, a text part's media type and file name are dropped (0.3 text parts have neither).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .models import (
    Artifact,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    Task,
    TaskState,
    TaskStatus,
)

__all__ = [
    "STATE_NAMES",
    "MessageSendParams",
    "TaskIdParams",
    "TaskQueryParams",
    "stream_item",
    "task",
]

#: The 0.3 name of each state.
STATE_NAMES: dict[TaskState, str] = {state: state.value[11:].lower().replace("_", "-") for state in TaskState}


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class _TextPart(_Model):
    kind: Literal["text"]
    text: str
    metadata: dict[str, Any] | None = None


class _FileContent(_Model):
    bytes: str | None = None
    uri: str | None = None
    mime_type: str | None = None
    name: str | None = None


class _FilePart(_Model):
    kind: Literal["file"]
    file: _FileContent
    metadata: dict[str, Any] | None = None


class _DataPart(_Model):
    kind: Literal["data"]
    data: dict[str, Any]
    metadata: dict[str, Any] | None = None


_Part = Annotated[_TextPart | _FilePart | _DataPart, Field(discriminator="kind")]


class _Message(_Model):
    kind: Literal["message"] = "message"
    message_id: Annotated[str, Field(min_length=1)]
    role: Literal["user", "agent"]
    parts: Annotated[list[_Part], Field(min_length=1)]
    context_id: str | None = None
    task_id: str | None = None
    metadata: dict[str, Any] | None = None
    extensions: list[str] | None = None
    reference_task_ids: list[str] | None = None

    def as_v1(self) -> Message:
        parts = [_part_v1(part) for part in self.parts]
        return Message(
            message_id=self.message_id,
            role=Role.USER if self.role == "user" else Role.AGENT,
            parts=parts,
            context_id=self.context_id,
            task_id=self.task_id,
            metadata=self.metadata,
            extensions=self.extensions,
            reference_task_ids=self.reference_task_ids,
        )


def _part_v1(part: _TextPart | _FilePart | _DataPart) -> Part:
    if isinstance(part, _TextPart):
        return Part(text=part.text, metadata=part.metadata)
    if isinstance(part, _DataPart):
        return Part(data=part.data, metadata=part.metadata, media_type="application/json")
    file = part.file
    common = {"media_type": file.mime_type, "filename": file.name, "metadata": part.metadata}
    if (file.bytes is None) == (file.uri is None):
        raise ValueError("a file part has exactly one of bytes and uri")
    if file.bytes is not None:
        return Part(raw=file.bytes, **common)
    return Part(url=file.uri, **common)


class _Configuration(_Model):
    accepted_output_modes: list[str] | None = None
    blocking: bool | None = None
    history_length: int | None = None
    push_notification_config: dict[str, Any] | None = None


class MessageSendParams(_Model):
    """The params of ``message/send`` and ``message/stream``."""

    message: _Message
    configuration: _Configuration | None = None
    metadata: dict[str, Any] | None = None

    def as_v1(self) -> SendMessageRequest:
        """The 1.0 request this one means."""
        configuration = None
        if self.configuration is not None:
            given = self.configuration
            configuration = SendMessageConfiguration(
                accepted_output_modes=given.accepted_output_modes,
                history_length=given.history_length,
                return_immediately=given.blocking is False,
                task_push_notification_config=given.push_notification_config,
            )
        return SendMessageRequest(
            message=self.message.as_v1(), configuration=configuration, metadata=self.metadata
        )


class TaskQueryParams(_Model):
    """The params of ``tasks/get``."""

    id: Annotated[str, Field(min_length=1)]
    history_length: int | None = None
    metadata: dict[str, Any] | None = None

    def as_v1(self) -> GetTaskRequest:
        """The 1.0 request this one means."""
        return GetTaskRequest(id=self.id, history_length=self.history_length)


class TaskIdParams(_Model):
    """The params of ``tasks/cancel`` and ``tasks/resubscribe``."""

    id: Annotated[str, Field(min_length=1)]
    metadata: dict[str, Any] | None = None


# writing 0.3 --------------------------------------------------------------------------------------
def _part(part: Part) -> dict[str, Any]:
    out: dict[str, Any]
    if part.text is not None:
        out = {"kind": "text", "text": part.text}
    elif part.raw is not None or part.url is not None:
        file: dict[str, Any] = {"bytes": part.raw} if part.raw is not None else {"uri": part.url}
        if part.media_type:
            file["mimeType"] = part.media_type
        if part.filename:
            file["name"] = part.filename
        out = {"kind": "file", "file": file}
    elif isinstance(part.data, dict):
        out = {"kind": "data", "data": part.data}
    else:
        out = {"kind": "text", "text": json.dumps(part.data, separators=(",", ":"), ensure_ascii=False)}
    if part.metadata:
        out["metadata"] = part.metadata
    return out


def _message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "message",
        "messageId": message.message_id,
        "role": "user" if message.role is Role.USER else "agent",
        "parts": [_part(part) for part in message.parts],
    }
    for key, value in (
        ("contextId", message.context_id),
        ("taskId", message.task_id),
        ("metadata", message.metadata),
    ):
        if value is not None:
            out[key] = value
    return out


def _status(status: TaskStatus) -> dict[str, Any]:
    out: dict[str, Any] = {"state": STATE_NAMES[status.state]}
    if status.message is not None:
        out["message"] = _message(status.message)
    if status.timestamp is not None:
        out["timestamp"] = status.timestamp
    return out


def _artifact(artifact: Artifact) -> dict[str, Any]:
    out: dict[str, Any] = {
        "artifactId": artifact.artifact_id,
        "parts": [_part(part) for part in artifact.parts],
    }
    for key, value in (
        ("name", artifact.name),
        ("description", artifact.description),
        ("metadata", artifact.metadata),
    ):
        if value is not None:
            out[key] = value
    return out


def task(value: Task) -> dict[str, Any]:
    """A task as 0.3 JSON."""
    out: dict[str, Any] = {
        "kind": "task",
        "id": value.id,
        "contextId": value.context_id,
        "status": _status(value.status),
    }
    if value.artifacts:
        out["artifacts"] = [_artifact(artifact) for artifact in value.artifacts]
    if value.history:
        out["history"] = [_message(message) for message in value.history]
    if value.metadata is not None:
        out["metadata"] = value.metadata
    return out


def stream_item(item: StreamResponse, *, final: bool) -> dict[str, Any]:
    """A stream item as the 0.3 result it is (a task, a message, a status or an artifact update);
    ``final`` marks the last status update of the stream."""
    if item.task is not None:
        return task(item.task)
    if item.message is not None:
        return _message(item.message)
    if item.status_update is not None:
        update = item.status_update
        return {
            "kind": "status-update",
            "taskId": update.task_id,
            "contextId": update.context_id,
            "status": _status(update.status),
            "final": final,
        }
    assert item.artifact_update is not None
    chunk = item.artifact_update
    out: dict[str, Any] = {
        "kind": "artifact-update",
        "taskId": chunk.task_id,
        "contextId": chunk.context_id,
        "artifact": _artifact(chunk.artifact),
    }
    if chunk.append is not None:
        out["append"] = chunk.append
    if chunk.last_chunk is not None:
        out["lastChunk"] = chunk.last_chunk
    return out
