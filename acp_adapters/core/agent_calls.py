"""Calling an agent function of any kind, and the error a run fails with when the agent raises.

Rules this module keeps:

* Every item the agent yields or returns goes to ``sink`` in the agent's own order; what ``sink``
  returns is sent back into a generator (the resume of an await).
* Sync agents run in the bounded thread pool (``limiter``), inside the host's context (a Flask app
  context); they hand items to the event loop with ``anyio.from_thread``, so a cancelled run makes
  their next hand-over raise (:class:`RunCancelled`) and a sync generator stops at its next yield.
* An agent's exception shows its internals only in debug mode.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator
from contextlib import AbstractContextManager
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread

from .agents import AgentDefinition
from .context import Context
from .foreign import UnsendableValue, foreign_error, type_name
from .models import Error, ErrorCode, Message

__all__ = ["RunCancelled", "agent_error", "call_agent"]

logger = logging.getLogger("acp_adapters")

Sink = Callable[[Any], Coroutine[Any, Any, Any]]


class RunCancelled(Exception):
    """Raised where a cancelled run's agent hands over its next item."""


async def call_agent(
    agent: AgentDefinition,
    input: list[Message],
    context: Context,
    sink: Sink,
    limiter: anyio.CapacityLimiter,
    sync_agent_context: Callable[[], AbstractContextManager[Any]] | None,
) -> None:
    """Call ``agent`` on ``input`` and hand what it yields or returns to ``sink``."""
    func, kind = agent.func, agent.kind
    args: tuple[Any, ...] = (input, context) if agent.takes_context else (input,)

    def in_sync_context(func: Callable[..., Any], *args: Any) -> Any:
        if context.cancelled:  # stopped while it waited for a thread
            raise RunCancelled()
        if sync_agent_context is None:
            return func(*args)
        with sync_agent_context():
            return func(*args)

    if kind == "async_generator":
        await _drive_async_generator(func(*args), sink)
    elif kind == "coroutine":
        await sink(await func(*args))
    elif kind == "sync_generator":
        drive = _drive_sync_generator
        await anyio.to_thread.run_sync(in_sync_context, drive, func, args, sink, context, limiter=limiter)
    else:
        result = await anyio.to_thread.run_sync(in_sync_context, func, *args, limiter=limiter)
        if not context.cancelled:
            await sink(result)


async def _drive_async_generator(gen: AsyncGenerator[Any, Any], sink: Sink) -> None:
    value: Any = None
    try:
        while True:
            try:
                item = await gen.asend(value)
            except StopAsyncIteration:
                return
            value = await sink(item)
    finally:
        await gen.aclose()


def _drive_sync_generator(
    func: Callable[..., Generator[Any, Any, Any]], args: tuple[Any, ...], sink: Sink, context: Context
) -> None:
    gen = func(*args)
    value: Any = None
    try:
        while not context.cancelled:
            try:
                item = gen.send(value)
            except StopIteration:
                return
            value = anyio.from_thread.run(sink, item)
    finally:
        gen.close()


def agent_error(exc: Exception, *, run_id: uuid.UUID, agent_name: str, debug: bool) -> Error:
    """The error a run fails with when its agent raises ``exc``: internals only in debug mode."""
    sdk_error = foreign_error(exc)
    if sdk_error is not None:  # the official SDK's ACPError, raised by an agent written for it
        return sdk_error
    if isinstance(exc, UnsendableValue):  # the agent author's mistake: say which, debug or not
        logger.warning("run %s: %s", run_id, exc)
        data: dict[str, Any] = {"reason": "unsendable_value", "type": exc.value_type}
        if debug:
            data["exception"] = "TypeError"
        return Error(code=ErrorCode.SERVER_ERROR, message=str(exc), data=data)
    logger.exception("run %s of agent %s failed", run_id, agent_name)
    if debug:
        kind = type_name(exc)
        return Error(
            code=ErrorCode.SERVER_ERROR,
            message=f"the agent failed: {kind}: {exc}"[:2000],
            data={"exception": kind},
        )
    return Error(code=ErrorCode.SERVER_ERROR, message="the agent failed with an unexpected error")
