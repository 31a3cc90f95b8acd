"""The demo agents that every example app serves (see docs/agents.md), and what the examples share.

One definition, imported by ``example_starlette``, ``example_flask`` and ``example_django``, the tests
and the benchmark: the agents (:func:`demo_registry`, and :func:`private_registry` for the mount that
needs a token), the base settings (:data:`DEMO_SETTINGS`, which each example overlays with the
``ACP_*`` environment through ``Settings.from_env``), the store named by ``ACP_STORE``
(:func:`store_from_env`) and the bearer tokens of ``ACP_DEMO_TOKENS`` (:func:`demo_tokens`).
"""

from __future__ import annotations

import asyncio
import hmac
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from acp_adapters import ACPError, AgentRegistry, Context, Settings
from acp_adapters.core.errors import AuthenticationRequired
from acp_adapters.core.executors import Executor
from acp_adapters.core.http import Request
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

__all__ = [
    "BEARER_CHALLENGE",
    "DEMO_SETTINGS",
    "DEMO_TOKENS_ENV",
    "BearerTokens",
    "demo_registry",
    "demo_tokens",
    "executor_from_env",
    "private_registry",
    "store_from_env",
]

#: A 1x1 transparent PNG, base64.
PNG_1X1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="

#: The settings every example starts from: the library's defaults, so no origin is trusted. Each
#: example applies the ``ACP_*`` environment on top (``Settings.from_env(base=DEMO_SETTINGS)``); two
#: local instances sharing a session name each other in ``ACP_TRUSTED_ORIGINS``.
DEMO_SETTINGS = Settings()

#: The variable that maps bearer tokens to owners on ``/acp-private``: ``alice=token-a,bob=token-b``.
DEMO_TOKENS_ENV = "ACP_DEMO_TOKENS"

#: The ``WWW-Authenticate`` challenge of ``/acp-private``.
BEARER_CHALLENGE = 'Bearer realm="acp"'


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


def private_registry() -> AgentRegistry:
    """The agents of ``/acp-private``: every demo agent, and ``whoami``."""
    agents = demo_registry()

    @agents.agent()
    async def whoami(input: list[Message], context: Context) -> AsyncIterator[str]:
        """Says who the caller is (the owner its token or login maps to)."""
        yield f"you are {context.owner}"

    return agents


def store_from_env(namespace: str = "") -> Store | None:
    """The store named by the ``ACP_STORE`` environment variable (``redis://...``), or ``None`` for the
    in-memory default. The examples read it; the library never reads the environment itself.

    ``namespace`` keeps a second mount's keys apart on Redis (``acp:private:...`` next to ``acp:...``).
    The store takes its retention and bounds from the settings of the service it is given to.
    """
    url = os.environ.get("ACP_STORE", "")
    if not url or url.startswith("memory"):
        return None
    from acp_adapters.stores import store_from_url

    if not namespace:
        return store_from_url(url)
    # The Redis store's own default prefix is "acp:"; a prefix in the URL replaces it.
    prefix = dict(parse_qsl(urlsplit(url).query)).get("prefix", "acp:")
    return store_from_url(url, prefix=f"{prefix}{namespace}:")


def executor_from_env(name: str = "acp") -> Executor | None:
    """The executor ``ACP_EXECUTOR`` names for the mount ``name``: ``celery`` hands the runs to the
    Celery worker of :mod:`example_agents.worker` (see :mod:`example_agents.celery_app`); unset, empty or
    ``inprocess``: ``None``, runs execute in the web process. Raises ``ValueError`` for anything else."""
    kind = os.environ.get("ACP_EXECUTOR", "").strip().lower()
    if kind in ("", "inprocess", "in-process"):
        return None
    if kind != "celery":
        raise ValueError(f"ACP_EXECUTOR must be celery or inprocess, not {kind!r}")
    from example_agents.celery_app import executor

    return executor(name)


def demo_tokens(environ: Mapping[str, str] | None = None) -> BearerTokens:
    """The bearer tokens of ``ACP_DEMO_TOKENS`` (``alice=token-a,bob=token-b``: name=token pairs).

    Unset or empty: no token, so nobody gets into ``/acp-private`` with one. Raises ``ValueError``
    naming the variable for a malformed list: a pair without ``=``, an empty name or token, a token
    with spaces, or one token given to two owners. Read once, when an example app is made.
    """
    text = (os.environ if environ is None else environ).get(DEMO_TOKENS_ENV, "")
    owners: dict[str, str] = {}
    for pair in filter(None, (item.strip() for item in text.split(","))):
        name, sep, token = (part.strip() for part in pair.partition("="))
        if not sep or not name or not token or any(c.isspace() for c in token):
            raise ValueError(
                f"{DEMO_TOKENS_ENV}: {pair!r} is not name=token (write e.g. alice=token-a,bob=token-b)"
            )
        if owners.setdefault(token, name) != name:
            raise ValueError(f"{DEMO_TOKENS_ENV}: one token is given to both {owners[token]!r} and {name!r}")
    return BearerTokens(owners)


class BearerTokens:
    """Bearer tokens and the owners they stand for: the auth of every example's ``/acp-private``.

    :meth:`owner` is the mount's owner function (given the ``Authorization`` header), :meth:`authorize`
    its ``authorize`` hook, the same in every framework: no known token, 401 with
    ``WWW-Authenticate: Bearer realm="acp"``, rendered by the core.
    """

    def __init__(self, owners: Mapping[str, str]) -> None:
        #: token -> owner
        self.owners = dict(owners)

    def owner(self, authorization: str | None) -> str | None:
        """The owner whose token ``Authorization: Bearer <token>`` carries, else ``None``. Every token
        is compared, in constant time."""
        scheme, _, given = (authorization or "").strip().partition(" ")
        given = given.strip()
        if scheme.lower() != "bearer" or not given:
            return None
        found = None
        for token, name in self.owners.items():
            if hmac.compare_digest(given.encode(), token.encode()):
                found = name
        return found

    def authorize(self, request: Request, agent: str | None) -> None:
        """The ``authorize`` hook: lets a known token through, answers 401 to anyone else."""
        authorization = request.headers.get("authorization")
        if self.owner(authorization) is None:
            raise AuthenticationRequired(
                "unknown token" if authorization else "send Authorization: Bearer <token>",
                challenge=BEARER_CHALLENGE,
            )
