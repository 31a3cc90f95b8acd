"""The demo agents that every example app serves (see docs/agents.md).

One definition, imported by ``example_starlette``, ``example_flask`` and ``example_django``, the tests
and the benchmark.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

from acp_adapters import ACPError, AgentRegistry, Context, Settings
from acp_adapters.core.store import Store
from acp_adapters.models import (
    Artifact,
    CitationMetadata,
    Error,
    ErrorCode,
    Message,
    MessageAwaitRequest,
    MessageAwaitResume,
    MessagePart,
    TrajectoryMetadata,
)

__all__ = ["DEMO_SETTINGS", "demo_registry", "store_from_env"]

#: A 1x1 transparent PNG, base64.
PNG_1X1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="

#: The examples trust loopback origins so that two local instances can share a session.
DEMO_SETTINGS = Settings()


def demo_registry() -> AgentRegistry:
    """A new registry holding every demo agent."""
    agents = AgentRegistry()

    @agents.agent()
    async def echo(input: list[Message], context: Context) -> AsyncIterator[Message]:
        """Echoes every input message back."""
        for message in input:
            yield message

    @agents.agent(name="sync-echo")
    def sync_echo(input: list[Message], context: Context) -> list[Message]:
        """Returns the input messages (a plain function, run off the event loop)."""
        return input

    @agents.agent(name="gen-echo")
    def gen_echo(input: list[Message], context: Context) -> Iterator[Message]:
        """Yields every input message (a sync generator, run off the event loop)."""
        yield from input

    @agents.agent(name="slow-echo")
    async def slow_echo(input: list[Message], context: Context) -> AsyncIterator[Message]:
        """Sleeps a second before echoing each input message."""
        for message in input:
            await asyncio.sleep(1)
            yield message

    @agents.agent(name="history-echo")
    async def history_echo(input: list[Message], context: Context) -> AsyncIterator[Message]:
        """Yields the session history, oldest first, then the input messages."""
        async for message in context.session.load_history():
            yield message
        for message in input:
            yield message

    @agents.agent()
    async def sessioner(input: list[Message], context: Context) -> AsyncIterator[str]:
        """Yields the run's session id."""
        yield str(context.session.id)

    @agents.agent()
    async def awaiter(input: list[Message], context: Context) -> AsyncIterator[Any]:
        """Awaits a message from the client, then says what it received."""
        resume = yield MessageAwaitRequest(message=Message(role="agent", parts=[]))
        assert isinstance(resume, MessageAwaitResume)
        yield MessagePart(content=f"received: {resume.message.text}")

    @agents.agent()
    async def failer(input: list[Message], context: Context) -> AsyncIterator[Error]:
        """Fails the run with an invalid_input error."""
        yield Error(code=ErrorCode.INVALID_INPUT, message="Wrong question buddy!")

    @agents.agent()
    async def raiser(input: list[Message], context: Context) -> AsyncIterator[str]:
        """Raises an ACP error."""
        raise ACPError(Error(code=ErrorCode.INVALID_INPUT, message="Wrong question buddy!"))
        yield ""  # pragma: no cover - makes this an async generator

    @agents.agent()
    async def crasher(input: list[Message], context: Context) -> AsyncIterator[str]:
        """Raises an unexpected exception: the run fails with server_error."""
        raise RuntimeError("boom")
        yield ""  # pragma: no cover - makes this an async generator

    @agents.agent(
        name="mime-types",
        input_content_types=["text/plain", "application/json"],
        output_content_types=["text/html", "application/json", "application/javascript", "text/css"],
    )
    async def mime_types(input: list[Message], context: Context) -> AsyncIterator[MessagePart]:
        """Yields parts of several content types."""
        yield MessagePart(content="<h1>HTML Content</h1>", content_type="text/html")
        yield MessagePart(content='{"key": "value"}', content_type="application/json")
        yield MessagePart(content="console.log('Hello');", content_type="application/javascript")
        yield MessagePart(content="body { color: red; }", content_type="text/css")

    @agents.agent(name="base64-encoding")
    async def base64_encoding(input: list[Message], context: Context) -> AsyncIterator[Message]:
        """Yields a base64 PNG and a plain text part in one message."""
        yield Message(
            role="agent",
            parts=[
                MessagePart(content=PNG_1X1, content_type="image/png", content_encoding="base64"),
                MessagePart(content="This is plain text", content_type="text/plain"),
            ],
        )

    @agents.agent(name="artifact-producer")
    async def artifact_producer(input: list[Message], context: Context) -> AsyncIterator[MessagePart]:
        """Yields a text part and three artifacts."""
        yield MessagePart(content="Processing with artifacts")
        yield Artifact(
            name="text-result.txt", content_type="text/plain", content="This is a text artifact result"
        )
        yield Artifact(
            name="data.json",
            content_type="application/json",
            content='{"results": [1, 2, 3], "status": "complete"}',
        )
        yield Artifact(name="image.png", content_type="image/png", content=PNG_1X1, content_encoding="base64")

    @agents.agent()
    async def chunks(input: list[Message], context: Context) -> AsyncIterator[str]:
        """Yields N text parts "0 ", "1 ", ... where N is the last input message's text (default 10)."""
        try:
            count = min(int(input[-1].text.strip()), 100_000)
        except ValueError:
            count = 10
        for i in range(count):
            yield f"{i} "

    @agents.agent(name="tool-trajectory")
    async def tool_trajectory(input: list[Message], context: Context) -> AsyncIterator[MessagePart]:
        """Yields a part with trajectory metadata and one with citation metadata."""
        text = "".join(message.text for message in input)
        yield MessagePart(
            content="",
            metadata=TrajectoryMetadata(tool_name="search", tool_input={"q": text}, tool_output={"hits": 1}),
        )
        yield MessagePart(
            content="Hello",
            metadata=CitationMetadata(url="https://example.org", title="Example", start_index=0, end_index=5),
        )

    return agents


def store_from_env() -> Store | None:
    """The store named by the ``ACP_STORE`` environment variable (``redis://...``), or ``None`` for the
    in-memory default. The examples read it; the library never reads the environment itself."""
    url = os.environ.get("ACP_STORE", "")
    if not url or url.startswith("memory"):
        return None
    from acp_adapters.stores import store_from_url

    return store_from_url(url, settings=DEMO_SETTINGS)
