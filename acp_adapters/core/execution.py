"""One run's execution: calling the agent, turning what it yields into events, await and cancel.

Why one module over 300 lines: the item handling, the byte charges, the await and the endings share
one run's mutable state (its open message, output, bytes, the limit that stopped it); split apart they
would pass that state around instead. Agent calling is in :mod:`.agent_calls`, the lifecycle in
:mod:`.lifecycle`.

Rules this module keeps:

* The agent's items are handled in the agent's own task (no queue between them): an item becomes
  events that are serialised once and appended to the store's log.
* The agent is called by :mod:`.agent_calls` (sync agents in the engine's bounded thread pool); a
  cancel interrupts an async agent where it awaits, a sync one at its next hand-over.
* Status changes go through ``Store.transition`` with the statuses they expect: a run a client
  cancels meanwhile ends ``cancelled``, whatever the agent was doing. Every store write of the run goes
  through its :class:`~.run_writes.RunWrites` (which may hold its creation until its first write).
* Limits fail a run, they never stop the server: past ``max_run_duration`` the agent is stopped as by
  a cancel and the run is failed at once, even if the agent holds on; an event
  that would take the run's log past ``max_run_log_bytes`` (or the active runs' past
  ``max_retained_bytes``) is not stored and fails the run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractContextManager
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
from pydantic import BaseModel

from .agent_calls import RunCancelled, agent_error, call_agent
from .agents import AgentDefinition
from .context import Context, SessionContext
from .errors import ACPError
from .events import RunJSON, encode_event, message_event, message_json, part_event
from .foreign import UnsendableValue, from_foreign, looks_like_a_message, type_name
from .lifecycle import ACTIVE, ENDING_EVENTS, STOP_EVENTS, TRANSITIONS, ending, may_become, server_error
from .limits import ActiveRuns
from .models import (
    Error,
    GenericEvent,
    Message,
    MessageAwaitRequest,
    MessageAwaitResume,
    MessagePart,
    Run,
    RunMode,
    RunStatus,
    utc_now,
)
from .run_reports import RunReports
from .run_writes import RunWrites
from .settings import Settings
from .store import EventRecord, Store, StoreUnavailable

__all__ = ["RunCancelled", "RunExecution", "RunHost"]

logger = logging.getLogger("acp_adapters")

#: How many events a busy agent may emit before the loop gets a turn (so streams flow while it runs).
_EVENTS_PER_TURN = 64
#: How long a run that has ended keeps trying to record its outcome while the store is unreachable.
_FINISH_RETRY_FOR = 60.0


@dataclasses.dataclass(frozen=True)
class RunHost:
    """What an execution needs of the engine that executes it (made by the engine when it starts)."""

    store: Store
    settings: Settings
    #: The slots and log bytes of the runs executing in this process (the execution counts its bytes).
    active: ActiveRuns
    #: The threads sync agents run in.
    limiter: anyio.CapacityLimiter
    #: Entered in the worker thread around every call of a sync agent (a Flask app context).
    sync_agent_context: Callable[[], AbstractContextManager[Any]] | None
    #: Starts a task on the engine's loop that the engine cancels when it closes.
    spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]
    #: Gives back a run's slot and bytes (idempotent): the run has ended, or was failed while its
    #: agent still holds a thread.
    release: Callable[[RunExecution], None]
    #: Told when a run's agent starts and when its ending is stored (manifest status, run logs).
    reports: RunReports


class RunExecution:
    """Executes one run of one agent on the engine's event loop."""

    def __init__(
        self,
        host: RunHost,
        agent: AgentDefinition,
        run: Run,
        run_json: RunJSON,
        input: list[Message],
        session: SessionContext,
        owner: str | None,
        on_completed: Callable[[list[Message]], Awaitable[None]] | None,
    ) -> None:
        self.host = host
        self.store: Store = host.store
        #: Its store writes (its creation among them, when the engine leaves that for its first write).
        self.writes = RunWrites(host.store, run.run_id)
        self.agent = agent
        self.run = run
        self._json = run_json
        self.input = input
        self.context = Context(
            run_id=run.run_id, agent_name=agent.name, session=session, owner=owner, sink=self.sink
        )
        self._on_completed = on_completed
        self._role = f"agent/{agent.name}"
        self._open: Message | None = None
        self._emitted = 0
        self._interruptible = False  # whether cancel() may interrupt the task: an async agent runs
        self.resume: asyncio.Future[bytes] | None = None
        #: The event after which the run first awaited or ended (``None`` if it stopped without one).
        self.settled: asyncio.Future[EventRecord | None] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None
        #: Bytes of the events of this run's log (the engine sums them over its active runs).
        self.log_bytes = 0
        #: Whether the engine has taken back this run's slot and bytes (see ``RunHost.release``).
        self.released = False
        #: The error a limit stopped the run with: it ends failed with it, whatever the agent does next.
        self._failure: ACPError | None = None
        #: The tick of the engine's clock at which the run fails if it has not ended.
        self.deadline_tick = 0
        #: Whether the run is in progress already when it executes (a worker claimed it so): ``execute``
        #: does not move it there.
        self.started = False
        #: The mode of the request that created the run, for its log line (set by the engine that
        #: created it; ``None`` when another process did).
        self.mode: RunMode | None = None
        #: Events of the run's log (its ``run.created``, logged by the engine, is the first).
        self.event_count = 1
        #: The trace context its job carried, when another process created the run (its span's parent).
        self.trace_parent: dict[str, str] | None = None

    # commands from the engine (same loop) ---------------------------------------------------------
    def cancel(self) -> None:
        """Stop the agent: the run ends ``cancelled`` once the agent has let go (or ``failed``, if a
        limit stopped it)."""
        self.context.mark_cancelled()
        if self.resume is not None and not self.resume.done():
            self.resume.set_exception(RunCancelled())
        elif self._interruptible and self.task is not None:
            self.task.cancel()

    def time_out(self, seconds: float) -> None:
        """The run has gone on for ``seconds``, its most (awaiting time included): stop the agent as a
        cancel would, and fail the run now."""
        self.fail(server_error(f"the run took longer than {seconds:g} s", "max_run_duration"))

    def fail(self, error: Error) -> None:
        """Fail the run with ``error`` now and stop the agent as a cancel would (a deadline, a worker
        that stops)."""
        self._failure = ACPError(error)
        self.cancel()
        # Recorded now, not when the agent lets go: a sync agent may hold its thread for long.
        self.host.spawn(self._fail_at_deadline(error))

    async def _fail_at_deadline(self, error: Error) -> None:
        try:
            await self._finish_failed(error)
        except Exception as exc:  # the store is down: the execution's own ending tries again
            logger.warning("run %s: could not record that it timed out: %s", self.run.run_id, exc)
            return
        # The run has ended: an agent still holding its thread finishes in the background.
        self.host.release(self)

    def deliver_resume(self, payload: bytes) -> None:
        """Hand a resume to the awaiting agent."""
        if self.resume is not None and not self.resume.done():
            self.resume.set_result(payload)

    # the run --------------------------------------------------------------------------------------
    async def execute(self) -> None:
        run_id = self.run.run_id
        self.host.reports.started(self, self.host.settings.progress_log_interval)
        try:
            if not self.started and not await self._transition(
                {"status": RunStatus.IN_PROGRESS}, {RunStatus.CREATED}
            ):
                await self._finish_cancelled()
                return
            if self.context.cancelled:  # (started with its creation, and stopped before its agent ran)
                raise RunCancelled()
            await self._call_agent_interruptibly()
            if self._failure is not None:
                raise self._failure
            if self.context.cancelled:
                await self._finish_cancelled()
                return
            await self._close_message()
            await self._finish_completed()
        except RunCancelled:
            if self._failure is not None:
                await self._finish_failed(self._failure.error)
            else:
                await self._finish_cancelled()
        except ACPError as exc:
            await self._finish_failed((self._failure or exc).error)
        except StoreUnavailable as exc:
            logger.warning("run %s: the store became unreachable: %s", run_id, exc)
            await self._finish_failed(server_error("the store became unreachable during the run"))
        except Exception as exc:
            if self._failure is not None:  # the agent stumbled on the limit that stopped it
                await self._finish_failed(self._failure.error)
                return
            debug = self.host.settings.debug
            await self._finish_failed(
                agent_error(exc, run_id=run_id, agent_name=self.agent.name, debug=debug)
            )

    async def _call_agent_interruptibly(self) -> None:
        """Call the agent; a cancel interrupts an async agent where it awaits (a sync agent, in its
        thread, sees ``context.cancelled`` and stops at its next hand-over instead)."""
        self._interruptible = self.agent.kind in ("async_generator", "coroutine")
        try:
            host = self.host
            await call_agent(
                self.agent, self.input, self.context, self.sink, host.limiter, host.sync_agent_context
            )
        except asyncio.CancelledError:
            if not self.context.cancelled:  # the engine is shutting down
                raise
            task = asyncio.current_task()
            if task is not None and hasattr(task, "uncancel"):  # Python 3.11+
                task.uncancel()
        finally:
            self._interruptible = False

    # what the agent yields ------------------------------------------------------------------------
    async def sink(self, item: Any) -> Any:
        """Handle one item the agent yielded or returned; returns what to send back into the agent."""
        if self.context.cancelled:  # (a limit that failed the run marks it cancelled too)
            raise RunCancelled()
        if isinstance(item, str):
            await self._add_part(MessagePart(content=item))
        elif isinstance(item, MessagePart):
            await self._add_part(item)
        elif isinstance(item, Message):
            await self._add_message(item)
        elif isinstance(item, MessageAwaitRequest):
            return await self._await(item)
        elif isinstance(item, Error):
            raise ACPError(item)
        elif item is None:
            await self._close_message()
        elif isinstance(item, (list, tuple)):
            for element in item:
                await self.sink(element)
        elif isinstance(item, BaseModel):  # (a MessageAwaitRequest of the SDK returns the resume)
            return await self._sink_model(item)
        elif isinstance(item, dict):
            await self._emit(_generic(item))
        elif isinstance(item, Exception):  # as the official SDK does: yielding an error raises it
            raise item
        else:
            kind = type_name(item)
            raise UnsendableValue(
                f"agent {self.agent.name} yielded a value of type {kind}, which ACP cannot carry "
                "(an agent yields str, MessagePart, Artifact, Message, None, MessageAwaitRequest, "
                "Error, or a dict or pydantic model for a generic event)",
                kind,
            )
        return None

    async def _sink_model(self, item: BaseModel) -> Any:
        """A pydantic model that is none of ours: one of the official SDK's, taken as ours; anything
        named like a message fails the run; any other model is a ``generic`` event."""
        kind = type_name(item)
        try:
            ours = from_foreign(item)
        except ValueError as exc:
            raise UnsendableValue(
                f"agent {self.agent.name} yielded a {kind} that is not valid ACP: {exc}", kind
            ) from None
        if ours is not None:
            return await self.sink(ours)
        if looks_like_a_message(item):
            raise UnsendableValue(
                f"agent {self.agent.name} yielded a {kind}, which is not an ACP message: yield "
                "acp_adapters.models.Message or MessagePart (or a str) made from it, or its "
                ".model_dump() for a generic event",
                kind,
            )
        await self._emit(_generic(item.model_dump(mode="json")))
        return None

    async def _add_part(self, part: MessagePart) -> None:
        if self._open is None:
            message = Message(role=self._role, parts=[part], created_at=utc_now())
            events: tuple[EventRecord, ...] = (
                message_event("message.created", message_json(message)),
                part_event(part),
            )
            self._charge(events)  # (before the message joins the output: it may be refused)
            self._open = message
            self.run.output.append(message)
        else:
            events = (part_event(part),)
            self._charge(events)
            self._open.parts.append(part)
        await self._append(*events)

    async def _close_message(self) -> None:
        message, self._open = self._open, None
        if message is not None:
            message.completed_at = utc_now()
            data = message_json(message)
            self._json.finished_message(message, data)
            await self._emit(message_event("message.completed", data), with_output=True)

    async def _add_message(self, message: Message) -> None:
        await self._close_message()
        now = utc_now()
        message = message.model_copy(
            update={"role": self._role, "created_at": message.created_at or now, "completed_at": now}
        )
        data = message_json(message)
        events = [message_event("message.created", data)]
        events.extend(part_event(part) for part in message.parts)
        events.append(message_event("message.completed", data))
        self._charge(events)
        self.run.output.append(message)
        self._json.finished_message(message, data)
        await self._append(*events, with_output=True)

    async def _emit(self, *events: EventRecord, with_output: bool = False) -> None:
        self._charge(events)
        await self._append(*events, with_output=with_output)

    def _charge(self, events: Sequence[EventRecord]) -> None:
        """Count the events' bytes, or fail the run if they would take it past a limit (they are then
        not stored)."""
        size = sum(len(event.data) for event in events)
        if not self.released:  # (a run failed at its deadline whose agent still goes on: not counted)
            limit = self.host.active.over_budget(self.log_bytes, size)
            if limit is not None:
                self._fail_by_limit(limit)
        self._add_bytes(size)

    def _add_bytes(self, size: int) -> None:
        self.log_bytes += size
        if not self.released:  # (a run failed at its deadline whose agent still goes on)
            self.host.active.log_bytes += size

    def _fail_by_limit(self, limit: str) -> None:
        """Fail the run because more bytes of log would take it past ``limit``; stop the agent."""
        settings = self.host.settings
        if limit == "max_run_log_bytes":
            message = f"the run's events went over {settings.max_run_log_bytes} bytes"
        else:
            message = f"the active runs' events went over {settings.max_retained_bytes} bytes"
        self._failure = ACPError(server_error(message, limit))
        self.context.mark_cancelled()  # a sync agent watching context.cancelled stops too
        raise self._failure

    async def _append(self, *events: EventRecord, with_output: bool = False) -> None:
        """Append the events; ``with_output``: and the run's output as it is now (its messages complete),
        which a store that writes events behind writes with them, or with the run's next write if that
        comes first (a short run's ending: one write for its last message and its end)."""
        await self.writes.append(events, list(self.run.output) if with_output else None)
        self.event_count += len(events)
        self._emitted += len(events)
        if self._emitted >= _EVENTS_PER_TURN:
            self._emitted = 0
            await asyncio.sleep(0)

    # await ----------------------------------------------------------------------------------------
    async def _await(self, request: MessageAwaitRequest) -> MessageAwaitResume:
        await self._close_message()
        self.resume = asyncio.get_running_loop().create_future()
        changes = {"status": RunStatus.AWAITING, "await_request": request}
        if not await self._transition(changes, may_become(RunStatus.AWAITING)):
            raise RunCancelled()
        timeout = self.host.settings.await_timeout
        try:
            # (anyio's deadline: asyncio.wait_for on Python 3.10 and 3.11 may drop the run task's
            # cancellation when a resume comes in the same turn, and the run would outlive its engine)
            with anyio.fail_after(timeout):
                payload = await asyncio.shield(self.resume)
        except TimeoutError:
            # Claim the await as a resume would, so that a resume racing the timeout gets a 409.
            claimed = {"status": RunStatus.IN_PROGRESS}
            if await self._transition(claimed, {RunStatus.AWAITING}, announce=False):
                message = f"the run awaited input for more than {timeout:g} s"
                raise ACPError(server_error(message, "await_timeout")) from None
            payload = await self.resume  # a resume won the race: it is on its way
        finally:
            self.resume = None
        # The resume request already set in-progress and cleared the await request.
        self.run.status = RunStatus.IN_PROGRESS
        self.run.await_request = None
        await self._emit(self._json.event("run.in-progress", self.run))
        return MessageAwaitResume.model_validate_json(payload)

    # endings --------------------------------------------------------------------------------------
    async def _transition(
        self, changes: dict[str, Any], expect: frozenset[RunStatus] | set[RunStatus], *, announce: bool = True
    ) -> bool:
        """Move the run to ``changes["status"]`` if its status is in ``expect``, with the event that
        announces that status (see :data:`~acp_adapters.core.lifecycle.TRANSITIONS`) unless
        ``announce`` is false."""
        kind = TRANSITIONS[changes["status"]].event if announce else None
        return await self._store_step(
            changes, expect, self._json.event(kind, self.run, changes) if kind else None
        )

    async def _store_step(
        self,
        changes: dict[str, Any],
        expect: frozenset[RunStatus] | set[RunStatus],
        event: EventRecord | None,
    ) -> bool:
        """Apply ``changes`` if the run's status is in ``expect``, with ``event`` (in one store step);
        keep our copy of the run in step."""
        events = [event] if event is not None else []
        # An ending is stored whatever its size, and not counted: the run's bytes are given back with it.
        charged = event is not None and event.type not in ENDING_EVENTS
        if charged:
            self._charge(events)
        record = await self.writes.transition(changes, expect, events)
        if record is None:
            if charged:
                self._add_bytes(-len(events[0].data))
            return False
        self.event_count += len(events)
        if events and events[0].type in STOP_EVENTS and not self.settled.done():  # (or cancelled)
            self.settled.set_result(events[0])
        if record.run is not self.run:  # the in-memory store shares our object
            for name, value in changes.items():
                setattr(self.run, name, value)
        return True

    async def _status_is(self, expect: frozenset[RunStatus] | set[RunStatus]) -> bool:
        return await self.writes.update({}, expect) is not None

    async def _finish(self, status: RunStatus, error: Error | None = None) -> bool:
        end = ending(self.run, status, error, run_json=self._json, with_output=True)
        # A run stopped by a limit ends failed even if a client asked to cancel it meanwhile; an
        # agent's own error or its completion does not overrule a cancel.
        stopping = status is RunStatus.CANCELLED or (status is RunStatus.FAILED and self._failure is not None)
        expect = may_become(status) if stopping else may_become(status) & ACTIVE
        # A shared store may be down for a moment: the run's outcome is worth waiting for (meanwhile
        # its lease is kept, as it still executes here), rather than being failed later as lost.
        delay, waited = 0.05, 0.0
        while True:
            try:
                ended = await self._store_step(end.changes, expect, end.event)
            except StoreUnavailable as exc:
                # A run the store does not have yet (see .run_writes) waits for nobody but its caller,
                # who gets the store's 503 now, as its creation would have given.
                if waited >= _FINISH_RETRY_FOR or self.writes.unwritten:
                    raise
                logger.warning(
                    "run %s: could not record that it %s (%s); trying again in %.2g s",
                    self.run.run_id,
                    status.value,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, 2.0)
                continue
            if ended:
                self.host.reports.ended(self)
            return ended

    async def _finish_completed(self) -> None:
        if self._on_completed is not None:
            if not await self._status_is({RunStatus.IN_PROGRESS}):
                await self._finish_cancelled()
                return
            try:
                await self._on_completed(self.run.output)
            except Exception:
                logger.exception("run %s: could not record the session history", self.run.run_id)
        if not await self._finish(RunStatus.COMPLETED):
            await self._finish_cancelled()

    async def _finish_failed(self, error: Error) -> None:
        if not await self._finish(RunStatus.FAILED, error):
            await self._finish_cancelled()

    async def _finish_cancelled(self) -> None:
        await self._finish(RunStatus.CANCELLED)


def _generic(data: dict[str, Any]) -> EventRecord:
    return encode_event(GenericEvent(generic=data))
