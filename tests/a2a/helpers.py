"""What the A2A tests share: the official a2a-sdk client made for a binding and a dialect, messages, and
strict checks of what the server sends against the SDK's own definitions of A2A (the 1.0 protobuf and
the 0.3 models), stricter than the client itself (no unknown field, every REQUIRED field present), and
against A2A 1.0's published JSON schema (tests/a2a/schema.py): every 1.0 answer a client made here
receives, and everything :func:`strict_v1` parses.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.client.card_resolver import A2ACardResolver
from a2a.client.client import Client
from a2a.types.a2a_pb2 import (
    AgentCard,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    Task,
    TaskState,
)
from a2a.utils.proto_utils import validate_proto_required_fields
from google.protobuf.json_format import ParseDict  # type: ignore[import-untyped]
from google.protobuf.message import Message as ProtoMessage  # type: ignore[import-untyped]

from tests.a2a.schema import SchemaCheckingTransport, validate

__all__ = [
    "FINAL",
    "JSONRPC",
    "REST",
    "card_v1",
    "client_for",
    "poll",
    "request",
    "send",
    "strict_v03",
    "strict_v1",
    "text_of",
    "user",
]

TIMEOUT = 30.0
JSONRPC = "JSONRPC"
REST = "HTTP+JSON"
FINAL = (TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_CANCELED)

P = TypeVar("P", bound=ProtoMessage)
M = TypeVar("M")


def user(text: str, *, task_id: str = "", context_id: str = "") -> Message:
    """A user's text message (with a fresh id), continuing a task or a context if given."""
    return Message(
        message_id=str(uuid.uuid4()),
        role=Role.ROLE_USER,
        parts=[Part(text=text)],
        task_id=task_id,
        context_id=context_id,
    )


def request(message: Message, *, return_immediately: bool = False) -> SendMessageRequest:
    return SendMessageRequest(
        message=message, configuration=SendMessageConfiguration(return_immediately=return_immediately)
    )


@asynccontextmanager
async def client_for(
    url: str,
    binding: str = JSONRPC,
    *,
    streaming: bool = False,
    version: str = "1.0",
    checker: SchemaCheckingTransport | None = None,
) -> AsyncIterator[Client]:
    """The official client for the agent at ``url``, from its card, speaking ``binding`` in
    ``version`` (``"0.3"``: the SDK's compat transport, chosen by keeping only the 0.3 interface).

    In 1.0, every answer it receives is checked against A2A's published JSON schema: what is not
    valid fails the test when the client is closed (``checker``: the transport that checks, to read
    what it checked)."""
    if checker is None and version == "1.0":
        checker = SchemaCheckingTransport()
    async with httpx.AsyncClient(timeout=TIMEOUT, transport=checker) as http:
        card = await A2ACardResolver(http, url).get_agent_card()
        if version != "1.0":
            kept = [i for i in card.supported_interfaces if i.protocol_version == version]
            del card.supported_interfaces[:]
            card.supported_interfaces.extend(kept)
        config = ClientConfig(streaming=streaming, httpx_client=http, supported_protocol_bindings=[binding])
        client = ClientFactory(config).create(card)
        try:
            yield client
        finally:
            await client.close()
    if checker is not None:
        problems = "\n".join(checker.errors)
        assert not checker.errors, f"answers not valid against A2A's JSON schema:\n{problems}"


async def send(client: Client, message: Message, *, return_immediately: bool = False) -> list[StreamResponse]:
    """Every item the client yields for one message (one task without streaming)."""
    return [
        item async for item in client.send_message(request(message, return_immediately=return_immediately))
    ]


async def poll(client: Client, task_id: str, until: tuple[int, ...] = FINAL) -> Task:
    """The task once its state is one of ``until`` (fails after 20 s)."""
    for _ in range(400):
        task = await client.get_task(GetTaskRequest(id=task_id))
        if task.status.state in until:
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} still {TaskState.Name(task.status.state)} after 20 s")


def text_of(task: Task) -> str:
    """The text of every text part of the task's artifacts, in order."""
    return "".join(
        part.text for artifact in task.artifacts for part in artifact.parts if part.HasField("text")
    )


def strict_v1(data: Any, message_type: type[P]) -> P:
    """``data`` parsed as the 1.0 protobuf ``message_type``: no unknown field, every REQUIRED one set;
    and valid against the definition of that message in A2A's published JSON schema."""
    validate(data, message_type.DESCRIPTOR.name)
    parsed: P = ParseDict(data, message_type())
    validate_proto_required_fields(parsed)
    return parsed


def strict_v03(data: Any, model: type[M]) -> M:
    """``data`` validated as the SDK's 0.3 model ``model``."""
    return model.model_validate(data)  # type: ignore[attr-defined, no-any-return]


def card_v1(data: dict[str, Any]) -> AgentCard:
    """A served card parsed as the 1.0 ``AgentCard``, once its 0.3 fields are set aside."""
    legacy = {"url", "preferredTransport", "protocolVersion"}
    return strict_v1({key: value for key, value in data.items() if key not in legacy}, AgentCard)
