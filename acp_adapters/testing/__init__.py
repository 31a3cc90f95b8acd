"""Test agents without a server: run them in process, as the HTTP API runs them.

>>> from acp_adapters.testing import run_agent                       # doctest: +SKIP
>>> run_agent(agents, "echo", "hi").text                             # doctest: +SKIP
'hi'

:func:`run_agent` runs one agent once and returns the run once it awaits or ends, whatever ``mode``.
:class:`AgentTestClient` (sync) and :class:`AsyncAgentTestClient` (async tests: anyio's pytest
plugin, pytest-asyncio, Django's async tests) keep one service across calls: create runs, resume,
cancel, wait for and stream them.

Both send the core (:class:`~acp_adapters.core.service.ACPService`) the requests an HTTP client would
send, so they answer as the API does: an error answer (4xx, 5xx) raises :class:`RequestFailed` with
the ACP error. The service runs on the process's event loop thread (:mod:`acp_adapters.bridge`), not
on the test's: a run goes on between calls whatever loop, if any, the test runs, and a test that ends
its loop strands no run. Close a client (``with``/``async with``, or :meth:`~AgentTestClient.close`)
to stop its runs.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import anyio
from pydantic import BaseModel, TypeAdapter

from acp_adapters.bridge import SyncBridge, SyncStreamResponse
from acp_adapters.core.agents import AgentRegistry
from acp_adapters.core.http import Request, Response, StreamResponse
from acp_adapters.core.models import (
    Error,
    ErrorCode,
    Event,
    Message,
    MessagePart,
    Run,
    RunEventsListResponse,
    RunStatus,
)
from acp_adapters.core.service import ACPService
from acp_adapters.core.settings import Settings
from acp_adapters.core.store import Store

__all__ = [
    "AgentTestClient",
    "AsyncAgentTestClient",
    "Input",
    "RequestFailed",
    "RunResult",
    "arun_agent",
    "messages_of",
    "run_agent",
]

#: What an agent may be given: a text (one user message), a message, or a list of them.
Input = str | Message | BaseModel | Sequence[str | Message | BaseModel]
Mode = Literal["sync", "async", "stream"]

#: The URL the service believes it is mounted at (it builds session resource URLs from it).
BASE_URL = "http://testserver/acp"
#: How often :meth:`AgentTestClient.wait` looks at a run.
POLL_INTERVAL = 0.01
_STILL_GOING = frozenset({RunStatus.CREATED, RunStatus.IN_PROGRESS, RunStatus.CANCELLING})
_EVENT: TypeAdapter[Any] = TypeAdapter(Event)


class RequestFailed(Exception):
    """The service answered with an ACP error: ``status`` (404, 409, 422...) and ``error``
    (``code``, ``message``, ``data``)."""

    def __init__(self, status: int, error: Error) -> None:
        super().__init__(f"{status} {error.code.value}: {error.message}")
        self.status = status
        self.error = error


@dataclass(frozen=True)
class RunResult:
    """A run as the API shows it (``run``) and its events so far, in order."""

    run: Run
    events: list[Any]

    @property
    def run_id(self) -> uuid.UUID:
        """The run's id."""
        return self.run.run_id

    @property
    def status(self) -> RunStatus:
        """The run's status."""
        return self.run.status

    @property
    def output(self) -> list[Message]:
        """The messages the agent has sent."""
        return self.run.output

    @property
    def text(self) -> str:
        """The ``text/plain`` content of the output, joined."""
        return "".join(message.text for message in self.run.output)

    @property
    def error(self) -> Error | None:
        """The error of a failed run."""
        return self.run.error


def messages_of(input: Input) -> list[Message]:
    """``input`` as the list of messages a run is given: a text becomes one user message."""
    if isinstance(input, str | BaseModel):
        return [_message(input)]
    if isinstance(input, Sequence):
        return [_message(item) for item in input]
    raise TypeError(f"input must be a str, a Message or a list of them, not {type(input).__name__}")


def _message(item: object) -> Message:
    if isinstance(item, Message):
        return item
    if isinstance(item, str):
        return Message(role="user", parts=[MessagePart(content=item)])
    if isinstance(item, BaseModel):  # a message of another library (the official SDK's): same shape
        return Message.model_validate(item.model_dump(mode="json", exclude_none=True))
    raise TypeError(f"input must be a str, a Message or a list of them, not {type(item).__name__}")


# requests and answers ---------------------------------------------------------------------------------
def _request(method: str, path: str, owner: str | None, body: dict[str, Any] | None = None) -> Request:
    if body is None:
        return Request(method=method, path=path, base_url=BASE_URL, owner=owner)
    return Request(
        method=method,
        path=path,
        base_url=BASE_URL,
        headers={"content-type": "application/json"},
        body=json.dumps(body).encode(),
        owner=owner,
    )


def _create(
    agent: str, input: Input, mode: Mode, session_id: uuid.UUID | str | None, owner: str | None
) -> Request:
    body: dict[str, Any] = {
        "agent_name": agent,
        "input": [m.model_dump(mode="json", exclude_none=True) for m in messages_of(input)],
        "mode": mode,
    }
    if session_id is not None:
        body["session_id"] = str(session_id)
    return _request("POST", "/runs", owner, body)


def _resume(run_id: uuid.UUID | str, input: Input, mode: Mode, owner: str | None) -> Request:
    messages = messages_of(input)
    if len(messages) != 1:
        raise ValueError(f"a run is resumed with one message, not {len(messages)}")
    message = messages[0].model_dump(mode="json", exclude_none=True)
    return _request("POST", f"/runs/{run_id}", owner, {"await_resume": {"message": message}, "mode": mode})


def _checked(response: Response) -> bytes:
    if response.status >= 400:
        try:
            error = Error.model_validate_json(response.body)
        except ValueError:
            error = Error(code=ErrorCode.SERVER_ERROR, message=response.body.decode(errors="replace"))
        raise RequestFailed(response.status, error)
    return response.body


def _run_id_of(response: Response | StreamResponse | SyncStreamResponse) -> str:
    return next(value for name, value in response.headers if name == "run-id")


class _Frames:
    """Events out of server-sent event chunks."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[Any]:
        self._buffer += chunk
        *frames, self._buffer = self._buffer.split(b"\n\n")
        events = []
        for frame in frames:
            for line in frame.split(b"\n"):
                if line.startswith(b"data: "):
                    events.append(_EVENT.validate_json(line[6:]))
        return events


def _raise_error_event(event: Any) -> None:
    if getattr(event, "type", None) == "error":
        raise RequestFailed(500, event.error)


# the clients ------------------------------------------------------------------------------------------
class _InProcessClient:
    """What both test clients hold: the service, the identity they ask as, the bridge to its loop.

    ``store`` and ``settings`` are the service's (default: a new in-memory store, default settings);
    ``owner`` is the identity the requests come from (runs and sessions are scoped to it).
    """

    def __init__(
        self,
        registry: AgentRegistry,
        *,
        store: Store | None = None,
        settings: Settings | None = None,
        owner: str | None = None,
    ) -> None:
        self.service = ACPService(registry, store=store, settings=settings)
        self.owner = owner
        self._bridge = SyncBridge(self.service)


class AgentTestClient(_InProcessClient):
    """Runs the agents of ``registry`` in process, from synchronous tests (pytest, Django's TestCase).

    ``store`` and ``settings`` are the service's (default: a new in-memory store, default settings);
    ``owner`` is the identity the requests come from (runs and sessions are scoped to it).
    """

    def run(
        self, agent: str, input: Input, *, mode: Mode = "sync", session_id: uuid.UUID | str | None = None
    ) -> RunResult:
        """Create a run of ``agent``. ``sync`` and ``stream`` return it once it awaits or ends,
        ``async`` as created (then :meth:`wait`)."""
        return self._answer(self._bridge.handle(_create(agent, input, mode, session_id, self.owner)))

    def resume(self, run_id: uuid.UUID | str, input: Input, *, mode: Mode = "sync") -> RunResult:
        """Resume an awaiting run with one message (a text or a :class:`Message`)."""
        return self._answer(self._bridge.handle(_resume(run_id, input, mode, self.owner)))

    def cancel(self, run_id: uuid.UUID | str) -> RunResult:
        """Ask a run to stop; it is then ``cancelling`` (:meth:`wait` for ``cancelled``)."""
        return self._answer(self._bridge.handle(_request("POST", f"/runs/{run_id}/cancel", self.owner)))

    def get(self, run_id: uuid.UUID | str) -> RunResult:
        """The run as it is now, with its events."""
        response = self._bridge.handle(_request("GET", f"/runs/{run_id}", self.owner))
        assert isinstance(response, Response)
        return self._with_events(Run.model_validate_json(_checked(response)))

    def wait(self, run_id: uuid.UUID | str, *, timeout: float = 10.0) -> RunResult:
        """The run once it awaits or ends; :class:`TimeoutError` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.get(run_id)
            if result.status not in _STILL_GOING:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} is still {result.status.value} after {timeout} s")
            time.sleep(POLL_INTERVAL)

    def stream(self, agent: str, input: Input, *, session_id: uuid.UUID | str | None = None) -> Iterator[Any]:
        """The events of a new run in stream mode, as they come, until it awaits or ends. Leaving
        the loop early ends the subscription, not the run."""
        response = self._bridge.handle(_create(agent, input, "stream", session_id, self.owner))
        if isinstance(response, Response):
            _checked(response)
            return
        frames = _Frames()
        try:
            for chunk in response.body:
                for event in frames.feed(chunk):
                    _raise_error_event(event)
                    yield event
        finally:
            response.body.close()

    def close(self) -> None:
        """Stop the service: runs still going are cancelled."""
        self._bridge.close()

    def __enter__(self) -> AgentTestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _answer(self, response: Response | SyncStreamResponse) -> RunResult:
        if isinstance(response, SyncStreamResponse):
            run_id = _run_id_of(response)
            frames = _Frames()
            try:
                for chunk in response.body:
                    for event in frames.feed(chunk):
                        _raise_error_event(event)
            finally:
                response.body.close()
            return self.get(run_id)
        return self._with_events(Run.model_validate_json(_checked(response)))

    def _with_events(self, run: Run) -> RunResult:
        response = self._bridge.handle(_request("GET", f"/runs/{run.run_id}/events", self.owner))
        assert isinstance(response, Response)
        return RunResult(run, RunEventsListResponse.model_validate_json(_checked(response)).events)


class AsyncAgentTestClient(_InProcessClient):
    """:class:`AgentTestClient` for async tests (``await client.run(...)``).

    The service runs on the process's event loop thread, not on the test's loop: runs outlive a
    test's loop, and one client may serve several tests.
    """

    async def run(
        self, agent: str, input: Input, *, mode: Mode = "sync", session_id: uuid.UUID | str | None = None
    ) -> RunResult:
        """See :meth:`AgentTestClient.run`."""
        return await self._answer(
            await self._bridge.ahandle(_create(agent, input, mode, session_id, self.owner))
        )

    async def resume(self, run_id: uuid.UUID | str, input: Input, *, mode: Mode = "sync") -> RunResult:
        """See :meth:`AgentTestClient.resume`."""
        return await self._answer(await self._bridge.ahandle(_resume(run_id, input, mode, self.owner)))

    async def cancel(self, run_id: uuid.UUID | str) -> RunResult:
        """See :meth:`AgentTestClient.cancel`."""
        request = _request("POST", f"/runs/{run_id}/cancel", self.owner)
        return await self._answer(await self._bridge.ahandle(request))

    async def get(self, run_id: uuid.UUID | str) -> RunResult:
        """See :meth:`AgentTestClient.get`."""
        response = await self._bridge.ahandle(_request("GET", f"/runs/{run_id}", self.owner))
        assert isinstance(response, Response)
        return await self._with_events(Run.model_validate_json(_checked(response)))

    async def wait(self, run_id: uuid.UUID | str, *, timeout: float = 10.0) -> RunResult:  # noqa: ASYNC109
        """See :meth:`AgentTestClient.wait`."""
        deadline = time.monotonic() + timeout
        while True:
            result = await self.get(run_id)
            if result.status not in _STILL_GOING:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} is still {result.status.value} after {timeout} s")
            await anyio.sleep(POLL_INTERVAL)

    async def stream(
        self, agent: str, input: Input, *, session_id: uuid.UUID | str | None = None
    ) -> AsyncIterator[Any]:
        """See :meth:`AgentTestClient.stream` (``async for event in client.stream(...)``)."""
        response = await self._bridge.ahandle(_create(agent, input, "stream", session_id, self.owner))
        if isinstance(response, Response):
            _checked(response)
            return
        frames = _Frames()
        body = response.body
        try:
            async for chunk in body:
                for event in frames.feed(chunk):
                    _raise_error_event(event)
                    yield event
        finally:
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()

    async def aclose(self) -> None:
        """Stop the service: runs still going are cancelled."""
        await anyio.to_thread.run_sync(self._bridge.close)

    async def __aenter__(self) -> AsyncAgentTestClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _answer(self, response: Response | StreamResponse) -> RunResult:
        if isinstance(response, StreamResponse):
            run_id = _run_id_of(response)
            frames = _Frames()
            try:
                async for chunk in response.body:
                    for event in frames.feed(chunk):
                        _raise_error_event(event)
            finally:
                aclose = getattr(response.body, "aclose", None)
                if aclose is not None:
                    with anyio.CancelScope(shield=True):
                        await aclose()
            return await self.get(run_id)
        return await self._with_events(Run.model_validate_json(_checked(response)))

    async def _with_events(self, run: Run) -> RunResult:
        response = await self._bridge.ahandle(_request("GET", f"/runs/{run.run_id}/events", self.owner))
        assert isinstance(response, Response)
        return RunResult(run, RunEventsListResponse.model_validate_json(_checked(response)).events)


def run_agent(
    registry: AgentRegistry,
    agent: str,
    input: Input,
    *,
    mode: Mode = "sync",
    session_id: uuid.UUID | str | None = None,
    settings: Settings | None = None,
    store: Store | None = None,
    owner: str | None = None,
) -> RunResult:
    """Run ``agent`` of ``registry`` once on ``input`` and return the run once it awaits or ends
    (``mode`` only chooses how the API is asked: every mode gives the same result)."""
    with AgentTestClient(registry, store=store, settings=settings, owner=owner) as client:
        result = client.run(agent, input, mode=mode, session_id=session_id)
        return client.wait(result.run_id) if mode == "async" else result


async def arun_agent(
    registry: AgentRegistry,
    agent: str,
    input: Input,
    *,
    mode: Mode = "sync",
    session_id: uuid.UUID | str | None = None,
    settings: Settings | None = None,
    store: Store | None = None,
    owner: str | None = None,
) -> RunResult:
    """:func:`run_agent` for async tests."""
    async with AsyncAgentTestClient(registry, store=store, settings=settings, owner=owner) as client:
        result = await client.run(agent, input, mode=mode, session_id=session_id)
        return await client.wait(result.run_id) if mode == "async" else result
