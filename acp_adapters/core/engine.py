"""The run engine: creates runs, resumes and cancels them, follows their events, keeps sessions.

Rules this module keeps:

* Runs are not requests: a run is a task on the engine's loop; a request only creates, signals or
  follows it. A reader going away ends its reading, never the run.
* Every reader follows the run's event log from an index, so none misses an event, however fast the
  agent is.
* Cancel and resume reach a run executed in this process directly; with a shared store they may come
  from any process, through the store's signals.
* Limits on active runs are checked before any work: a new run takes a slot (counted per process,
  agent and owner, O(1)) that it gives back when it ends. The bytes of the event logs of the runs
  executing here are summed the same way, against ``max_retained_bytes``.
* Run deadlines are kept in ticks: a run joins the set of its deadline's tick, and one loop timer per
  tick (not per run) fails the runs still in it (adding and removing a run is O(1)).
* A session belongs to the identity of the run that claimed it first; anyone else naming it gets the
  answer a missing session gets.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import anyio

from .agents import AgentDefinition, AgentRegistry
from .context import SessionContext
from .errors import ConflictError, NotFoundError, TooManyRequests, ValidationFailed, agent_not_found
from .events import STOP_EVENTS, RunJSON, run_event
from .execution import RunExecution
from .models import (
    Error,
    ErrorCode,
    Message,
    Run,
    RunCreateRequest,
    RunResumeRequest,
    RunStatus,
    utc_now,
)
from .sessions import ResourceLoader
from .settings import Settings
from .store import EventRecord, RunRecord, SessionRecord, Signal, Store, StoreUnavailable

if TYPE_CHECKING:
    import httpx

__all__ = ["STOP_EVENTS", "RunEngine"]

logger = logging.getLogger("acp_adapters")

_CANCELLABLE = frozenset({RunStatus.CREATED, RunStatus.IN_PROGRESS, RunStatus.AWAITING})
#: Bytes of ``max_retained_bytes`` a new run needs left (its first events) to be let in.
_ROOM_TO_START = 1024


class RunEngine:
    """Owns the runs executing in this process. Lives on one event loop, started lazily."""

    def __init__(
        self,
        registry: AgentRegistry,
        store: Store,
        settings: Settings,
        sync_agent_context: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> None:
        self.registry = registry
        self.store = store
        self.settings = settings
        self.sync_agent_context = sync_agent_context
        self.limiter: anyio.CapacityLimiter | None = None
        self._executions: dict[uuid.UUID, RunExecution] = {}
        # The slots of the runs executing here (taken at create, given back when the run ends).
        self._active = 0
        self._active_by_agent: dict[str, int] = {}
        self._active_by_owner: dict[str | None, int] = {}
        #: Bytes of event log the runs executing in this process hold together.
        self.log_bytes = 0
        # Past it, a new run would find no room to start: it is refused rather than failed at once.
        budget = settings.max_retained_bytes
        self._full_at = budget - min(_ROOM_TO_START, budget // 4)
        # The runs to fail at each tick (a deadline is checked to within a tick: 1 s, or a twentieth of
        # max_run_duration if that is shorter).
        self._due: dict[int, set[RunExecution]] = {}
        self._tick = min(1.0, settings.max_run_duration / 20)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: httpx.AsyncClient | None = None
        self._starting: asyncio.Future[None] | None = None

    # lifecycle ------------------------------------------------------------------------------------
    async def ensure_started(self) -> None:
        """Start on the running loop if not yet started there (first request, or after a fork)."""
        loop = asyncio.get_running_loop()
        if self._loop is loop and self._starting is not None:
            if not self._starting.done():
                await asyncio.shield(self._starting)
            return
        self._loop = loop
        self._starting = loop.create_future()
        self._executions.clear()
        self._tasks.clear()
        self._active, self.log_bytes = 0, 0
        self._active_by_agent.clear()
        self._active_by_owner.clear()
        self._due.clear()
        try:
            self.limiter = anyio.CapacityLimiter(self.settings.sync_agent_threads)
            if self.settings.trusted_origins:
                from .safe_fetch import new_http_client

                self._http = new_http_client()
            await self.store.start()
            if self.store.shared:
                self._spawn(self._keep_leases())
            self._starting.set_result(None)
        except BaseException as exc:
            self._starting.set_exception(exc)
            self._starting.exception()  # mark retrieved; the next request retries
            self._loop = None
            raise

    async def aclose(self) -> None:
        """Cancel the runs executing here and release the store."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        await self.store.close()
        self._loop = None
        self._starting = None

    def _spawn(self, coro: object) -> asyncio.Task[None]:
        assert self._loop is not None
        task: asyncio.Task[None] = self._loop.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # runs -----------------------------------------------------------------------------------------
    async def create(
        self,
        request: RunCreateRequest,
        *,
        owner: str | None,
        base_url: str,
        run_id: uuid.UUID | None = None,
    ) -> Run:
        """Create a run and start it; returns the run as created.

        ``run_id`` fixes the new run's id (the service derives it for an ``Idempotency-Key``); by
        default a random one. Raises :class:`TooManyRequests` (429) before any work when a limit on
        active runs is reached, :class:`NotFoundError` for an unknown agent or another identity's
        session.
        """
        agent = self.registry.get(request.agent_name)
        if agent is None:
            raise agent_not_found(request.agent_name, [other.name for other in self.registry])
        self._take_slot(agent, owner)
        try:
            session = await self._open_session(request, owner)
            run = Run(agent_name=agent.name, session_id=session.id, run_id=run_id or uuid.uuid4())
            run_json = RunJSON(run)
            first = run_json.event("run.created", run)
            await self.store.create_run(RunRecord(run=run, owner=owner), first)
            if self.store.shared:
                await self.store.renew_leases([run.run_id], self.settings.lease_ttl)
        except BaseException:
            self._give_back_slot(agent, owner)
            raise

        loader = ResourceLoader(
            self.store, self.settings, base_url, self._http, owner=owner, run_id=run.run_id
        )
        session_context = SessionContext(session.id, list(session.history), session.state, loader, owner)
        record_session = None
        if request.session is not None or request.session_id is not None:
            record_session = self._session_recorder(session_context, loader, request.input, owner)
        execution = RunExecution(
            self, agent, run, run_json, request.input, session_context, owner, record_session
        )
        execution.log_bytes = len(first.data)
        self.log_bytes += execution.log_bytes
        self._executions[run.run_id] = execution
        execution.task = self._spawn(self._execute(execution))
        self._watch_deadline(execution)
        return run

    # limits on active runs ------------------------------------------------------------------------
    def check_capacity(self, agent: AgentDefinition, owner: str | None) -> None:
        """Raise :class:`TooManyRequests` if a run of ``agent`` by ``owner`` would be refused now;
        takes nothing (the service asks before it takes an ``Idempotency-Key``)."""
        self._take_slot(agent, owner)
        self._give_back_slot(agent, owner)

    def _take_slot(self, agent: AgentDefinition, owner: str | None) -> None:
        """Count a new run of ``agent`` by ``owner`` as active, or raise :class:`TooManyRequests`.

        Anonymous runs (owner ``None``) share one count for ``max_active_runs_per_owner``. A new run is
        refused too while the active runs' logs leave less than 1 KiB of ``max_retained_bytes``.
        Runs are counted by agent and by owner only where a cap asks for it.
        """
        settings = self.settings
        if self._active >= settings.max_active_runs:
            raise TooManyRequests(
                f"this server is executing {settings.max_active_runs} runs, its most: try again later",
                limit="max_active_runs",
                value=settings.max_active_runs,
            )
        per_agent = agent.max_active_runs
        of_agent = 0 if per_agent is None else self._active_by_agent.get(agent.manifest.name, 0)
        if per_agent is not None and of_agent >= per_agent:
            error = TooManyRequests(
                f"agent {agent.name} is executing {per_agent} runs, its most: try again later",
                limit="max_active_runs_per_agent",
                value=per_agent,
            )
            if error.error.data is not None:
                error.error.data["agent_name"] = agent.name
            raise error
        per_owner = settings.max_active_runs_per_owner
        of_owner = 0 if per_owner is None else self._active_by_owner.get(owner, 0)
        if per_owner is not None and of_owner >= per_owner:
            raise TooManyRequests(
                f"you have {per_owner} runs executing, the most one may have: try again later",
                limit="max_active_runs_per_owner",
                value=per_owner,
            )
        if self.log_bytes > self._full_at:
            raise TooManyRequests(
                f"the runs executing here hold more than {settings.max_retained_bytes} bytes of "
                "events: try again later",
                limit="max_retained_bytes",
                value=settings.max_retained_bytes,
            )
        self._active += 1
        if per_agent is not None:
            self._active_by_agent[agent.manifest.name] = of_agent + 1
        if per_owner is not None:
            self._active_by_owner[owner] = of_owner + 1

    def _give_back_slot(self, agent: AgentDefinition, owner: str | None) -> None:
        self._active -= 1
        if agent.max_active_runs is not None:
            name = agent.manifest.name
            of_agent = self._active_by_agent.pop(name) - 1
            if of_agent:
                self._active_by_agent[name] = of_agent
        if self.settings.max_active_runs_per_owner is not None:
            of_owner = self._active_by_owner.pop(owner) - 1
            if of_owner:
                self._active_by_owner[owner] = of_owner

    def release(self, execution: RunExecution) -> None:
        """The run has ended (or was failed while its agent still holds a thread): give back its slot
        and its bytes. Idempotent."""
        if execution.released:
            return
        execution.released = True
        due = self._due.get(execution.deadline_tick)
        if due is not None:
            due.discard(execution)
        self._give_back_slot(execution.agent, execution.context.owner)
        self.log_bytes -= execution.log_bytes
        self._executions.pop(execution.run.run_id, None)

    def _watch_deadline(self, execution: RunExecution) -> None:
        """Fail the run if it has not ended ``max_run_duration`` from now (awaiting time included)."""
        assert self._loop is not None
        tick = math.ceil((self._loop.time() + self.settings.max_run_duration) / self._tick)
        due = self._due.get(tick)
        if due is None:
            due = self._due[tick] = set()
            self._loop.call_at(tick * self._tick, self._expire, tick)
        due.add(execution)
        execution.deadline_tick = tick

    def _expire(self, tick: int) -> None:
        for execution in self._due.pop(tick, ()):
            execution.time_out(self.settings.max_run_duration)

    def _session_recorder(
        self, session: SessionContext, loader: ResourceLoader, input: list[Message], owner: str | None
    ) -> Callable[[list[Message]], Awaitable[None]]:
        """What adds a finished run's input and output, and the state it stored, to its session."""
        state_before = session.state

        async def record(output: list[Message]) -> None:
            urls = [
                await loader.store(m.__pydantic_serializer__.to_json(m, exclude_none=True), owner=owner)
                for m in (*input, *output)
            ]
            state = session.state if session.state != state_before else None
            if await self.store.extend_session(session.id, urls, state=state, owner=owner) is None:
                # The session expired meanwhile and another identity claimed its id.
                logger.warning("session %s belongs to another owner now: this run is not added", session.id)

        return record

    async def _execute(self, execution: RunExecution) -> None:
        run_id = execution.run.run_id
        listener = self._spawn(self._listen(execution)) if self.store.shared else None
        try:
            await execution.execute()
        except Exception:  # a bug, or a store down for longer than a run waits for it
            logger.exception("run %s stopped before it could record its outcome", run_id)
            try:
                await self._fail(run_id, "the run stopped unexpectedly")
            except Exception as exc:
                logger.warning("run %s: could not mark it failed either: %s", run_id, exc)
        finally:
            if listener is not None:
                listener.cancel()
            self.release(execution)
            if not execution.settled.done():  # stopped without a word: its waiter reads the store
                execution.settled.set_result(None)

    async def _listen(self, execution: RunExecution) -> None:
        """Pass signals from other processes to a run executing here."""
        while True:
            signal = await self.store.receive_signal(execution.run.run_id)
            if signal.kind == "cancel":
                execution.cancel()
            else:
                execution.deliver_resume(signal.payload)

    async def _open_session(self, request: RunCreateRequest, owner: str | None) -> SessionRecord:
        descriptor = request.session
        if descriptor is not None and request.session_id is not None and descriptor.id != request.session_id:
            raise ValidationFailed(
                "session_id and session.id disagree", {"fields": ["session_id", "session.id"]}
            )
        session_id = descriptor.id if descriptor is not None else request.session_id
        if session_id is None:  # a session of its own, kept nowhere: nothing to claim
            return SessionRecord(id=uuid.uuid4(), owner=owner)
        if descriptor is None:
            record = SessionRecord(id=session_id, owner=owner)
        else:
            record = SessionRecord(
                id=session_id,
                history=[str(url) for url in descriptor.history],
                state=str(descriptor.state) if descriptor.state is not None else None,
                owner=owner,
            )
        # The first run naming a session makes it its owner's, atomically, before it does anything.
        known = await self.store.claim_session(record)
        if known.owner != owner:
            raise NotFoundError(f"session {session_id} not found")
        if descriptor is None or known == record:  # (a store may hand back a copy of ours)
            return known
        await self.store.put_session(record)  # the owner forwarded a descriptor: it replaces ours
        return record

    async def get(self, run_id: uuid.UUID, owner: str | None) -> RunRecord:
        """The run, if it exists and ``owner`` may see it; else :class:`NotFoundError`."""
        record = await self.store.get_run(run_id)
        if record is None or (record.owner is not None and record.owner != owner):
            raise NotFoundError(f"run {run_id} not found")
        return record

    async def resume(self, run_id: uuid.UUID, request: RunResumeRequest, owner: str | None) -> int:
        """Resume an awaiting run; returns the index of the first event after the await."""
        await self.get(run_id, owner)
        start = await self.store.count_events(run_id)
        changes = {"status": RunStatus.IN_PROGRESS, "await_request": None}
        if await self.store.update_run(run_id, changes, expect={RunStatus.AWAITING}) is None:
            record = await self.get(run_id, owner)
            raise ConflictError(
                f"run {run_id} is {record.run.status.value}, not awaiting: it cannot be resumed",
                {"status": record.run.status.value},
            )
        payload = request.await_resume.model_dump_json().encode()
        execution = self._executions.get(run_id)
        if execution is not None:
            execution.deliver_resume(payload)
        else:
            await self.store.send_signal(run_id, Signal("resume", payload))
        return start

    async def cancel(self, run_id: uuid.UUID, owner: str | None) -> RunRecord:
        """Ask a run to stop; returns it as ``cancelling`` (or already ``cancelled``)."""
        await self.get(run_id, owner)
        record = await self.store.update_run(run_id, {"status": RunStatus.CANCELLING}, expect=_CANCELLABLE)
        if record is None:
            record = await self.get(run_id, owner)
            if record.run.status in (RunStatus.CANCELLING, RunStatus.CANCELLED):
                return record
            raise ConflictError(
                f"run {run_id} is {record.run.status.value}: it cannot be cancelled",
                {"status": record.run.status.value},
            )
        execution = self._executions.get(run_id)
        if execution is not None:
            execution.cancel()
        else:
            await self.store.send_signal(run_id, Signal("cancel"))
        return record

    async def follow(self, run_id: uuid.UUID, start: int = 0) -> AsyncIterator[tuple[int, list[EventRecord]]]:
        """Batches of the run's events from ``start`` on, until a stop event (see :data:`STOP_EVENTS`).

        Yields ``(index of the batch's first event, events)``; an empty batch means
        ``heartbeat_interval`` seconds passed without an event.
        """
        index = start
        while True:
            events = await self.store.read_events(run_id, index, self.settings.heartbeat_interval)
            if not events:
                if await self.store.get_run(run_id) is None:
                    return
                yield index, []
                continue
            for position, event in enumerate(events):
                if event.type in STOP_EVENTS:
                    yield index, events[: position + 1]
                    return
            yield index, events
            index += len(events)

    async def wait(self, run_id: uuid.UUID, start: int = 0) -> EventRecord | None:
        """Wait until the run awaits or ends; returns the event that says so (``None``: it vanished)."""
        execution = self._executions.get(run_id)
        if start == 0 and execution is not None:  # a run that began here: no need to read its log
            settled = await execution.settled  # only this request waits on it
            if settled is not None:
                return settled
        last: EventRecord | None = None
        async for _, events in self.follow(run_id, start):
            if events:
                last = events[-1]
        return last if last is not None and last.type in STOP_EVENTS else None

    # liveness -------------------------------------------------------------------------------------
    async def _keep_leases(self) -> None:
        interval = max(self.settings.lease_ttl / 3, 0.05)
        while True:
            try:
                await self.store.renew_leases(list(self._executions), self.settings.lease_ttl)
                for run_id in await self.store.find_lost_runs():
                    if run_id not in self._executions:
                        await self._fail(run_id, "the worker running this run was lost")
            except StoreUnavailable as exc:
                logger.warning("could not renew run leases: %s", exc)
            except Exception:
                logger.warning("could not renew run leases", exc_info=True)
            await asyncio.sleep(interval)

    async def _fail(self, run_id: uuid.UUID, reason: str) -> None:
        """Fail a run that will not record its outcome itself (if it has not ended yet)."""
        error = Error(code=ErrorCode.SERVER_ERROR, message=reason)
        changes = {
            "status": RunStatus.FAILED,
            "error": error,
            "finished_at": utc_now(),
            "await_request": None,
        }
        record = await self.store.get_run(run_id)
        if record is None or record.run.status.is_terminal:
            return
        event = run_event("run.failed", record.run.model_copy(update=changes))
        expect = {*_CANCELLABLE, RunStatus.CANCELLING}
        await self.store.transition(run_id, changes, expect=expect, events=[event])
