"""Wire models of the Agent Communication Protocol, after ``openapi.yaml`` (ACP 0.2).

Rules this module keeps:

* What a client sends is validated strictly where the spec is strict (roles, agent names, the
  content/content_url exclusion) and leniently elsewhere: unknown fields of a message part are kept,
  because ACP clients send them.
* What the server sends validates against the spec's schemas: date-times end in ``Z`` (the TypeScript
  client rejects offsets), ids are UUIDs, error codes are the spec's three.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyUrl,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

__all__ = [
    "AGENT_NAME_PATTERN",
    "AgentManifest",
    "AgentName",
    "AgentStatus",
    "AgentsListResponse",
    "Artifact",
    "AwaitRequest",
    "AwaitResume",
    "CitationMetadata",
    "Error",
    "ErrorCode",
    "ErrorEvent",
    "Event",
    "GenericEvent",
    "Message",
    "MessageAwaitRequest",
    "MessageAwaitResume",
    "MessageCompletedEvent",
    "MessageCreatedEvent",
    "MessagePart",
    "MessagePartEvent",
    "Metadata",
    "Run",
    "RunAwaitingEvent",
    "RunCancelledEvent",
    "RunCompletedEvent",
    "RunCreateRequest",
    "RunCreatedEvent",
    "RunEventsListResponse",
    "RunFailedEvent",
    "RunInProgressEvent",
    "RunMode",
    "RunResumeRequest",
    "RunStatus",
    "Session",
    "TrajectoryMetadata",
    "utc_now",
]

AGENT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ROLE_PATTERN = r"^(user|agent(\/[a-zA-Z0-9_\-]+)?)$"


def utc_now() -> datetime:
    """The current time in UTC (what every timestamp of a run is made from)."""
    return datetime.now(timezone.utc)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is timezone.utc:
        return value
    if value.tzinfo is None:  # a naive time is taken as UTC
        return value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:  # near year 1 or 9999 an offset can push it out of range
        raise ValueError("the date-time is out of range once converted to UTC") from None


#: A date-time kept in UTC, so that pydantic sends it as RFC 3339 with a ``Z`` suffix.
Timestamp = Annotated[datetime, AfterValidator(_as_utc)]
AgentName = Annotated[str, StringConstraints(pattern=AGENT_NAME_PATTERN, min_length=1, max_length=63)]


class ErrorCode(str, Enum):
    """The error codes the spec allows."""

    SERVER_ERROR = "server_error"
    INVALID_INPUT = "invalid_input"
    NOT_FOUND = "not_found"


class Error(BaseModel):
    """An ACP error: ``{code, message, data?}``."""

    code: ErrorCode
    message: str
    data: dict[str, Any] | None = None


class CitationMetadata(BaseModel):
    """A citation of a source, attached to a message part."""

    kind: Literal["citation"] = "citation"
    start_index: int | None = None
    end_index: int | None = None
    url: str | None = None
    title: str | None = None
    description: str | None = None


class TrajectoryMetadata(BaseModel):
    """A reasoning step or a tool call of the agent, attached to a message part."""

    kind: Literal["trajectory"] = "trajectory"
    message: str | None = None
    tool_name: str | None = None
    tool_input: dict[str, Any] | None = None
    tool_output: dict[str, Any] | None = None


class MessagePart(BaseModel):
    """One part of a message: inline ``content`` or a ``content_url``, never both."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    content_type: str = "text/plain"
    content: str | None = None
    content_encoding: Literal["plain", "base64"] = "plain"
    content_url: AnyUrl | None = None
    metadata: Annotated[CitationMetadata | TrajectoryMetadata, Field(discriminator="kind")] | None = None

    @model_validator(mode="after")
    def _content_xor_url(self) -> MessagePart:
        if self.content is not None and self.content_url is not None:
            raise ValueError("a message part has either content or content_url, not both")
        return self


class Artifact(MessagePart):
    """A named message part: an output of its own, such as a file."""

    name: str


class Message(BaseModel):
    """A message: a role and an ordered, non-empty list of parts."""

    role: Annotated[str, StringConstraints(pattern=ROLE_PATTERN)] = "user"
    parts: list[MessagePart]
    created_at: Timestamp | None = None
    completed_at: Timestamp | None = None

    @property
    def text(self) -> str:
        """The ``text/plain`` parts' contents joined."""
        return "".join(
            part.content
            for part in self.parts
            if part.content is not None and part.content_type == "text/plain"
        )

    def __str__(self) -> str:
        return self.text


class MessageAwaitRequest(BaseModel):
    """What an agent yields to pause the run until a client sends a message."""

    type: Literal["message"] = "message"
    message: Message


class MessageAwaitResume(BaseModel):
    """What a client sends to resume a run that awaits a message."""

    type: Literal["message"] = "message"
    message: Message


AwaitRequest = MessageAwaitRequest
AwaitResume = MessageAwaitResume


class RunMode(str, Enum):
    """How the answer to a create or resume request is given."""

    SYNC = "sync"
    ASYNC = "async"
    STREAM = "stream"


class RunStatus(str, Enum):
    """The states of a run's lifecycle."""

    CREATED = "created"
    IN_PROGRESS = "in-progress"
    AWAITING = "awaiting"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        """Whether the run has ended for good."""
        return self in _TERMINAL


_TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})


class Run(BaseModel):
    """A run of an agent: its status, its output so far and, once failed, its error."""

    agent_name: str
    session_id: uuid.UUID | None = None
    run_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    status: RunStatus = RunStatus.CREATED
    await_request: AwaitRequest | None = None
    output: list[Message] = Field(default_factory=list)
    error: Error | None = None
    created_at: Timestamp = Field(default_factory=utc_now)
    finished_at: Timestamp | None = None


class Session(BaseModel):
    """A session descriptor: the URLs of its history messages and of its state."""

    id: uuid.UUID
    history: list[AnyUrl] = Field(default_factory=list)
    state: AnyUrl | None = None


class RunCreateRequest(BaseModel):
    """The body of ``POST /runs``."""

    agent_name: Annotated[str, StringConstraints(min_length=1)]
    session_id: uuid.UUID | None = None
    session: Session | None = None
    input: Annotated[list[Message], Field(min_length=1)]
    mode: RunMode = RunMode.SYNC


class RunResumeRequest(BaseModel):
    """The body of ``POST /runs/{run_id}``; the run id is taken from the path (clients omit it)."""

    run_id: uuid.UUID | None = None
    await_resume: AwaitResume
    mode: RunMode = RunMode.SYNC


class Metadata(BaseModel):
    """Static details of an agent for discovery; unknown keys are kept."""

    model_config = ConfigDict(extra="allow")

    annotations: dict[str, Any] | None = None
    documentation: str | None = None
    license: str | None = None
    programming_language: str | None = None
    natural_languages: list[str] | None = None
    framework: str | None = None
    capabilities: list[dict[str, str]] | None = None
    domains: list[str] | None = None
    tags: list[str] | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    author: dict[str, str] | None = None
    contributors: list[dict[str, str]] | None = None
    links: list[dict[str, str]] | None = None
    dependencies: list[dict[str, str]] | None = None
    recommended_models: list[str] | None = None


class AgentStatus(BaseModel):
    """The manifest's ``status`` (the spec's ``Status``): figures of the agent's finished runs."""

    avg_run_tokens: Annotated[float, Field(ge=0)] | None = None
    avg_run_time_seconds: Annotated[float, Field(ge=0)] | None = None
    #: Percentage (0 to 100) of runs that completed.
    success_rate: Annotated[float, Field(ge=0, le=100)] | None = None


class AgentManifest(BaseModel):
    """What ``GET /agents/{name}`` answers."""

    name: AgentName
    description: str
    input_content_types: Annotated[list[str], Field(min_length=1)] = Field(default_factory=lambda: ["*/*"])
    output_content_types: Annotated[list[str], Field(min_length=1)] = Field(default_factory=lambda: ["*/*"])
    metadata: Metadata = Field(default_factory=Metadata)
    #: Filled by the server from the runs it executed (``None``: none yet).
    status: AgentStatus | None = None


class AgentsListResponse(BaseModel):
    """What ``GET /agents`` answers."""

    agents: list[AgentManifest]


class MessageCreatedEvent(BaseModel):
    """A ``message.created`` event: the agent begins a message of the run's output."""

    type: Literal["message.created"] = "message.created"
    message: Message


class MessagePartEvent(BaseModel):
    """A ``message.part`` event: one part of the message being sent, as the agent yields it."""

    type: Literal["message.part"] = "message.part"
    part: MessagePart


class MessageCompletedEvent(BaseModel):
    """A ``message.completed`` event: a message of the run's output, whole."""

    type: Literal["message.completed"] = "message.completed"
    message: Message


class GenericEvent(BaseModel):
    """A ``generic`` event: anything else the agent reports (a JSON object), such as progress."""

    type: Literal["generic"] = "generic"
    generic: dict[str, Any]


class RunCreatedEvent(BaseModel):
    """A ``run.created`` event: the run exists; a run's first event."""

    type: Literal["run.created"] = "run.created"
    run: Run


class RunInProgressEvent(BaseModel):
    """A ``run.in-progress`` event: the agent has started."""

    type: Literal["run.in-progress"] = "run.in-progress"
    run: Run


class RunAwaitingEvent(BaseModel):
    """A ``run.awaiting`` event: the agent waits for a resume (``run.await_request`` says for what)."""

    type: Literal["run.awaiting"] = "run.awaiting"
    run: Run


class RunCompletedEvent(BaseModel):
    """A ``run.completed`` event: the run ended with its output."""

    type: Literal["run.completed"] = "run.completed"
    run: Run


class RunFailedEvent(BaseModel):
    """A ``run.failed`` event: the run ended with ``run.error``."""

    type: Literal["run.failed"] = "run.failed"
    run: Run


class RunCancelledEvent(BaseModel):
    """A ``run.cancelled`` event: the run was cancelled."""

    type: Literal["run.cancelled"] = "run.cancelled"
    run: Run


class ErrorEvent(BaseModel):
    """An ``error`` event: a stream that cannot go on says why (it is not part of the run's log)."""

    type: Literal["error"] = "error"
    error: Error


Event = Annotated[
    (
        MessageCreatedEvent
        | MessagePartEvent
        | MessageCompletedEvent
        | GenericEvent
        | RunCreatedEvent
        | RunInProgressEvent
        | RunAwaitingEvent
        | RunCompletedEvent
        | RunFailedEvent
        | RunCancelledEvent
        | ErrorEvent
    ),
    Field(discriminator="type"),
]


class RunEventsListResponse(BaseModel):
    """What ``GET /runs/{run_id}/events`` answers."""

    events: list[Event]
