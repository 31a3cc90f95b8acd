"""The context an agent gets: its run, its session, a way to yield from nested code, a cancel flag."""

from __future__ import annotations

import logging
import threading
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import anyio.from_thread

from .models import Message
from .resources import ResourceUnavailable

if TYPE_CHECKING:
    from .resources import ResourceLoader

__all__ = ["Context", "SessionContext"]

logger = logging.getLogger("acp_adapters")
_EVENT_LOCK = threading.Lock()


class SessionContext:
    """The run's session: its id, its history (resource URLs) and its state.

    The history is the one the run started with; the run's own input and output are added to the
    session when it finishes.
    """

    def __init__(
        self,
        session_id: uuid.UUID,
        history: list[str],
        state: str | None,
        loader: ResourceLoader,
        owner: str | None,
    ) -> None:
        self.id = session_id
        self.history = history
        self.state = state
        self._loader = loader
        self._owner = owner

    async def load_history(self) -> AsyncIterator[Message]:
        """The history's messages, oldest first. A message that cannot be loaded (missing, another
        identity's, an origin the host does not trust, a server that is down or too slow, past the
        run's cap on remote fetches) or is not a message is skipped; the server log says why."""
        for url in self.history:
            try:
                data = await self._loader.load(url)
            except ResourceUnavailable:  # the loader logged why
                continue
            try:
                message = Message.model_validate_json(data)
            except ValueError:
                logger.warning("session %s: history resource %r is not a message", self.id, url)
                continue
            yield message

    def load_history_sync(self) -> list[Message]:
        """:meth:`load_history` for sync agents (called from their worker thread)."""

        async def collect() -> list[Message]:
            return [message async for message in self.load_history()]

        return anyio.from_thread.run(collect)

    async def load_state(self) -> bytes | None:
        """The session's state, as the last run stored it, or ``None``. Raises
        :class:`~acp_adapters.core.resources.ResourceUnavailable` ("could not load the session state",
        whatever the reason; the server log says why) if it cannot be loaded."""
        if self.state is None:
            return None
        return await self._loader.load(self.state, what="the session state")

    async def store_state(self, data: bytes) -> str:
        """Store new state for the session; returns its URL."""
        self.state = await self._loader.store(data, owner=self._owner)
        return self.state


class Context:
    """What an agent is given besides its input.

    ``yield_async`` (async agents) and ``yield_sync`` (sync agents, from their thread) yield a value
    from nested code exactly as the agent's own ``yield`` would, and return what the run sends back
    (the resume of an await request). ``cancelled`` turns true when a client cancels the run: a plain
    function should check it (or wait on ``cancel_event``) and return early.
    """

    def __init__(
        self,
        *,
        run_id: uuid.UUID,
        agent_name: str,
        session: SessionContext,
        owner: str | None,
        sink: Callable[[Any], Coroutine[Any, Any, Any]],
    ) -> None:
        self.run_id = run_id
        self.agent_name = agent_name
        self.session = session
        self.owner = owner
        self._cancelled = False
        self._cancel_event: threading.Event | None = None
        #: The tokens the agent said its run used (:meth:`add_tokens`); ``None``: it said nothing.
        self.tokens: int | None = None
        # Weakly: the run's execution holds this context, and a cycle between them would keep each
        # finished run's objects alive until the garbage collector came by.
        self._sink = weakref.WeakMethod(sink)

    @property
    def cancelled(self) -> bool:
        """Whether the run was cancelled."""
        return self._cancelled

    @property
    def cancel_event(self) -> threading.Event:
        """A ``threading.Event`` set when the run is cancelled, for sync agents to wait on."""
        with _EVENT_LOCK:  # made on first use: most agents never ask for it
            if self._cancel_event is None:
                self._cancel_event = threading.Event()
                if self._cancelled:
                    self._cancel_event.set()
            return self._cancel_event

    def mark_cancelled(self) -> None:
        """Called by the engine when a client cancels the run."""
        with _EVENT_LOCK:
            self._cancelled = True
            if self._cancel_event is not None:
                self._cancel_event.set()

    def add_tokens(self, count: int) -> None:
        """Count ``count`` more tokens (a model call's usage) to this run. The agent's manifest reports
        their average over its runs that counted any, as ``status.avg_run_tokens``."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"add_tokens takes a whole number of tokens, 0 or more, not {count!r}")
        self.tokens = (self.tokens or 0) + count

    async def yield_async(self, value: Any) -> Any:
        """Yield ``value`` from an async agent's nested code; returns the resume value, if any."""
        return await self._live_sink()(value)

    def yield_sync(self, value: Any) -> Any:
        """Yield ``value`` from a sync agent's thread; returns the resume value, if any."""
        return anyio.from_thread.run(self._live_sink(), value)

    def _live_sink(self) -> Callable[[Any], Coroutine[Any, Any, Any]]:
        sink = self._sink()
        if sink is None:
            raise RuntimeError(f"run {self.run_id} has ended: nothing more can be yielded")
        return sink
