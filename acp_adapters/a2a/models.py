"""Wire models of A2A 1.0 (the dialect a2a-sdk 1.3 serves), for what this package serves.

A2A 1.0 is defined by its protobuf (``a2a.proto``); its JSON is the protobuf JSON mapping: camelCase
names, enums as their names (``TASK_STATE_COMPLETED``, ``ROLE_USER``), bytes in base64, a ``oneof`` as
the one field present (a part is ``{"text": ...}``, ``{"raw": ...}``, ``{"url": ...}`` or
``{"data": ...}``; a stream item ``{"task": ...}``, ``{"statusUpdate": ...}``...).

Rules this module keeps:

* What a client sends is read leniently where the SDK is (unknown fields are ignored, as protobuf's
  ``ignore_unknown_fields``) and strictly where the spec is (a message has an id, a role and parts; a
  part has exactly one content).
* What the server sends carries every field the proto marks REQUIRED and leaves out what is unset
  (``exclude_none``), so that the official clients parse it strictly.
* No dependency on ``a2a-sdk``: these are ours (the tests check them against the SDK).
"""

from __future__ import annotations

import base64
import binascii
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "A2AModel",
    "AgentCapabilities",
    "AgentCard",
    "AgentInterface",
    "AgentProvider",
    "AgentSkill",
    "Artifact",
    "CancelTaskRequest",
    "GetTaskRequest",
    "ListTasksRequest",
    "ListTasksResponse",
    "Message",
    "Part",
    "Role",
    "SendMessageConfiguration",
    "SendMessageRequest",
    "SendMessageResponse",
    "StreamResponse",
    "SubscribeToTaskRequest",
    "Task",
    "TaskArtifactUpdateEvent",
    "TaskState",
    "TaskStatus",
    "TaskStatusUpdateEvent",
]


class A2AModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def wire(self) -> dict[str, Any]:
        """As JSON-ready data: camelCase, unset fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def wire_json(self) -> bytes:
        """As JSON bytes: camelCase, unset fields left out."""
        return self.__pydantic_serializer__.to_json(self, by_alias=True, exclude_none=True)


def _enum_name(prefix: str, numbers: dict[int, str], short: dict[str, str]) -> Any:
    """A before-validator accepting an enum's proto name, its number (protobuf JSON allows both) or,
    leniently, its 0.3 spelling."""

    def accept(value: Any) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return numbers.get(value, value)
        if isinstance(value, str) and not value.startswith(prefix):
            return short.get(value.lower(), value)
        return value

    return accept


class Role(str, Enum):
    """Who sent a message."""

    USER = "ROLE_USER"
    AGENT = "ROLE_AGENT"


class TaskState(str, Enum):
    """The states of a task's lifecycle."""

    SUBMITTED = "TASK_STATE_SUBMITTED"
    WORKING = "TASK_STATE_WORKING"
    COMPLETED = "TASK_STATE_COMPLETED"
    FAILED = "TASK_STATE_FAILED"
    CANCELED = "TASK_STATE_CANCELED"
    INPUT_REQUIRED = "TASK_STATE_INPUT_REQUIRED"
    REJECTED = "TASK_STATE_REJECTED"
    AUTH_REQUIRED = "TASK_STATE_AUTH_REQUIRED"

    @property
    def is_terminal(self) -> bool:
        """Whether a task in this state has ended for good."""
        return self in (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED, TaskState.REJECTED)


_ROLE = _enum_name(
    "ROLE_", {1: Role.USER.value, 2: Role.AGENT.value}, {"user": "ROLE_USER", "agent": "ROLE_AGENT"}
)
_STATE = _enum_name(
    "TASK_STATE_",
    {number: state.value for number, state in enumerate(TaskState, 1)},
    {state.value[11:].lower().replace("_", "-"): state.value for state in TaskState}
    | {"canceled": TaskState.CANCELED.value},
)
RoleField = Annotated[Role, BeforeValidator(_ROLE)]
StateField = Annotated[TaskState, BeforeValidator(_STATE)]


def _is_base64(text: str) -> bool:
    """Whether ``text`` is base64, in the standard or the URL-safe alphabet, padded or not (as
    protobuf's JSON reads bytes)."""
    altchars = b"-_" if "-" in text or "_" in text else None
    try:
        base64.b64decode(text + "=" * (-len(text) % 4), altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


class Part(A2AModel):
    """One part of a message or an artifact: exactly one of ``text``, ``raw`` (base64), ``url`` or
    ``data`` (any JSON value), with an optional media type and file name."""

    text: str | None = None
    raw: str | None = None
    url: str | None = None
    data: Any = None
    metadata: dict[str, Any] | None = None
    filename: str | None = None
    media_type: str | None = None

    @model_validator(mode="after")
    def _one_content(self) -> Part:
        present = [name for name in ("text", "raw", "url", "data") if getattr(self, name) is not None]
        if len(present) != 1:
            raise ValueError("a part has exactly one of text, raw, url and data (not null)")
        if self.raw is not None and not _is_base64(self.raw):
            raise ValueError("raw must be base64")
        return self


class Message(A2AModel):
    """A message: an id, a role and a non-empty list of parts; the task and context it belongs to."""

    message_id: Annotated[str, Field(min_length=1)]
    context_id: str | None = None
    task_id: str | None = None
    role: RoleField
    parts: Annotated[list[Part], Field(min_length=1)]
    metadata: dict[str, Any] | None = None
    extensions: list[str] | None = None
    reference_task_ids: list[str] | None = None


class Artifact(A2AModel):
    """An output of a task: an id unique in the task, an optional name, its parts."""

    artifact_id: str
    name: str | None = None
    description: str | None = None
    parts: list[Part]
    metadata: dict[str, Any] | None = None


class TaskStatus(A2AModel):
    """A task's state, the message that goes with it (an agent's question, an error), and when."""

    state: StateField
    message: Message | None = None
    timestamp: str | None = None


class Task(A2AModel):
    """A task: an ACP run seen through A2A (its id is the run id, its context the run's session)."""

    id: str
    context_id: str
    status: TaskStatus
    artifacts: list[Artifact] | None = None
    history: list[Message] | None = None
    metadata: dict[str, Any] | None = None


class TaskStatusUpdateEvent(A2AModel):
    """A stream item: the task's status changed."""

    task_id: str
    context_id: str
    status: TaskStatus
    metadata: dict[str, Any] | None = None


class TaskArtifactUpdateEvent(A2AModel):
    """A stream item: an artifact, or a chunk of one (``append``: add its parts to the artifact)."""

    task_id: str
    context_id: str
    artifact: Artifact
    append: bool | None = None
    last_chunk: bool | None = None
    metadata: dict[str, Any] | None = None


class StreamResponse(A2AModel):
    """One item of a stream: exactly one of its fields is set."""

    task: Task | None = None
    message: Message | None = None
    status_update: TaskStatusUpdateEvent | None = None
    artifact_update: TaskArtifactUpdateEvent | None = None


class SendMessageResponse(A2AModel):
    """The answer to ``SendMessage``: the task (this server always answers with one)."""

    task: Task | None = None
    message: Message | None = None


class ListTasksResponse(A2AModel):
    """The answer to ``ListTasks``: always with its paging fields, even when empty."""

    tasks: list[Task]
    next_page_token: str
    page_size: int
    total_size: int


# requests -----------------------------------------------------------------------------------------
class SendMessageConfiguration(A2AModel):
    """How ``SendMessage`` answers: at once (``return_immediately``) or once the task awaits or ends."""

    accepted_output_modes: list[str] | None = None
    history_length: int | None = None
    return_immediately: bool = False
    task_push_notification_config: dict[str, Any] | None = None


class SendMessageRequest(A2AModel):
    """The params of ``SendMessage`` and ``SendStreamingMessage`` (the body of ``/message:send``)."""

    tenant: str | None = None
    message: Message
    configuration: SendMessageConfiguration | None = None
    metadata: dict[str, Any] | None = None


class GetTaskRequest(A2AModel):
    """The params of ``GetTask``."""

    tenant: str | None = None
    id: Annotated[str, Field(min_length=1)]
    history_length: int | None = None


class CancelTaskRequest(A2AModel):
    """The params of ``CancelTask``."""

    tenant: str | None = None
    id: Annotated[str, Field(min_length=1)]
    metadata: dict[str, Any] | None = None


class SubscribeToTaskRequest(A2AModel):
    """The params of ``SubscribeToTask``."""

    tenant: str | None = None
    id: Annotated[str, Field(min_length=1)]


class ListTasksRequest(A2AModel):
    """The params of ``ListTasks`` (the query of ``GET /tasks``)."""

    tenant: str | None = None
    context_id: str | None = None
    status: StateField | Literal["TASK_STATE_UNSPECIFIED"] | None = None
    page_size: int | None = None
    page_token: str | None = None
    history_length: int | None = None
    status_timestamp_after: str | None = None
    include_artifacts: bool | None = None


# the agent card -----------------------------------------------------------------------------------
class AgentInterface(A2AModel):
    """Where and how an agent is reached: a URL, a binding (``JSONRPC``, ``HTTP+JSON``), a version."""

    url: str
    protocol_binding: str
    protocol_version: str
    tenant: str | None = None


class AgentProvider(A2AModel):
    """Who provides the agent."""

    url: str
    organization: str


class AgentCapabilities(A2AModel):
    """What the agent supports beyond the basics."""

    streaming: bool | None = None
    push_notifications: bool | None = None
    extended_agent_card: bool | None = None
    extensions: list[dict[str, Any]] | None = None


class AgentSkill(A2AModel):
    """One thing the agent can do."""

    id: str
    name: str
    description: str
    tags: list[str]
    examples: list[str] | None = None
    input_modes: list[str] | None = None
    output_modes: list[str] | None = None


class AgentCard(A2AModel):
    """An agent's self-description, served at ``{agent}/.well-known/agent-card.json``.

    Beside the 1.0 fields it carries the 0.3 ones (``url``, ``preferredTransport``,
    ``protocolVersion``), as a2a-sdk's own server does, so that 0.3 clients find the agent too.
    """

    name: str
    description: str
    supported_interfaces: list[AgentInterface]
    provider: AgentProvider | None = None
    version: str
    documentation_url: str | None = None
    capabilities: AgentCapabilities
    default_input_modes: list[str]
    default_output_modes: list[str]
    skills: list[AgentSkill]
    # 0.3 ---
    url: str | None = None
    preferred_transport: str | None = None
    protocol_version: str | None = None
