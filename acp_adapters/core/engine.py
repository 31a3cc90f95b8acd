"""The run engine: creates runs, resumes and cancels them, follows their events, keeps sessions.

Why one module over 300 lines: it is one class, the owner of the runs executing in this process, and
each method is one operation on them (start, create, resume, cancel, follow, wait, the lease loop);
what has a job of its own is already beside it: executing a run (:mod:`.execution`), the lifecycle
(:mod:`.lifecycle`), limits and deadlines (:mod:`.limits`), sessions (:mod:`.sessions`).

Rules this module keeps:

* Runs are not requests: a run is a task on the engine's loop; a request only creates, signals or
  follows it. A reader going away ends its reading, never the run.
* Every reader follows the run's event log from an index, so none misses an event, however fast the
  agent is.
* Cancel and resume reach a run executed in this process directly; with a shared store they may come
  from any process, through the store's signals, which a run listens for once it has executed for
  :data:`LISTEN_AFTER` (a signal sent before waits in the store).
* A run nobody else can know of before its answer (a sync run without a session or an
  ``Idempotency-Key``, on a shared store) is written to the store with its first write of its own (its
  ending, its await) or once it has executed for :data:`LISTEN_AFTER`, whichever comes first
  (:mod:`.run_writes`): a short sync run is one store write.
* A stream run's agent starts once its stream's first event has been taken (its reader asks for
  the next), or :data:`STREAM_START_WAIT` after its creation if nobody reads: until the answer's
  headers and first event have left, the loop is the server's (Django's middleware hops back to it
  after the view, a WSGI server's thread waits for the GIL), not the agent's.
* Limits on active runs are checked before any work (:mod:`.limits`); a run past
  ``max_run_duration`` is failed at once.
* Statuses move only as :mod:`.lifecycle` allows, and a run that will not record its outcome itself
  is failed as every run is (:func:`.lifecycle.ending`). A run executed here is created in progress
  (its creation and its start, :func:`.lifecycle.starting`, one store step); the answer shows it as
  created, and a cancel before its agent starts still ends it cancelled without calling the agent.
* Sessions are opened and recorded by :mod:`.sessions`; an execution sees only its
  :class:`~.execution.RunHost`, never the engine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import anyio

from .agents import AgentDefinition, AgentRegistry
from .context import SessionContext
from .errors import ACPError, ConflictError, NotFoundError, agent_not_found
from .events import RunJSON
from .execution import RunExecution, RunHost
from .executors import Executor, RunJob, claim, queue_expired
from .lifecycle import STOP_EVENTS, ending, may_become, server_error, starting
from .limits import ActiveRuns, Deadlines
from .models import Run, RunCreateRequest, RunMode, RunResumeRequest, RunStatus
from .resources import ResourceLoader
from .run_reports import RunReports
from .sessions import open_session, session_recorder
from .settings import Settings
from .store import EventRecord, RunRecord, Signal, Store, StoreUnavailable

if TYPE_CHECKING:
    import httpx

__all__ = ["RunEngine"]

logger = logging.getLogger("acp_adapters")

#: The longest a stream run's agent waits for its stream's reader before it starts anyway.
STREAM_START_WAIT = 0.2
#: Seconds a run executes before its listener for signals from other processes (a shared store's
#: cancel and resume) starts: a short run ends before, and so costs no listener (a task, a wait
#: registered in the store). A signal sent meanwhile waits in the store and is taken at the start.
#: A run whose creation waits for its first write (see the rules) is written then too.
LISTEN_AFTER = 0.05


class RunEngine:
    """Owns the runs executing in this process. Lives on one event loop, started lazily."""

    def __init__(
        self,
        registry: AgentRegistry,
        store: Store,
        settings: Settings,
        sync_agent_context: Callable[[], AbstractContextManager[Any]] | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.registry = registry
        self.store = store
        #: Where the runs created here execute: here (the default), or handed over (see :mod:`.executors`).
        self.executor = executor or Executor()
        self._settings = settings
        self.sync_agent_context = sync_agent_context
        self.limiter: anyio.CapacityLimiter | None = None
        self._executions: dict[uuid.UUID, RunExecution] = {}
        #: The slots and log bytes of the runs executing here (taken at create, given back at the end).
        self.active = ActiveRuns(settings)
        #: What this process tells of its runs: each agent's manifest status, the runs' log lines.
        self.reports = RunReports()
        self._deadlines: Deadlines[RunExecution] = Deadlines(
            settings.max_run_duration, lambda execution: execution.time_out(settings.max_run_duration)
        )
        self._host: RunHost | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: httpx.AsyncClient | None = None
        self._starting: asyncio.Future[None] | None = None
        #: The reason :meth:`stop_all` gave: a run claimed after it began is failed with it too.
        self._stopping: str | None = None
        #: Stream runs created here whose agent waits for its stream's first read (see the rules).
        self._unstarted: dict[uuid.UUID, asyncio.TimerHandle] = {}

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
        self._unstarted.clear()
        self.active.clear()
        self._deadlines.clear()
        try:
            self.limiter = anyio.CapacityLimiter(self.settings.sync_agent_threads)
            self._host = RunHost(
                store=self.store,
                settings=self.settings,
                active=self.active,
                limiter=self.limiter,
                sync_agent_context=self.sync_agent_context,
                spawn=self._spawn,
                release=self.release,
                reports=self.reports,
            )
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
        for handle in self._unstarted.values():
            handle.cancel()
        self._unstarted.clear()
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

    @property
    def settings(self) -> Settings:
        """The settings the engine and its runs go by."""
        return self._settings

    @settings.setter
    def settings(self, settings: Settings) -> None:  # (a test changes them on a running engine)
        self._settings = settings
        self.active.settings = settings
        if self._host is not None:
            self._host = dataclasses.replace(self._host, settings=settings)

    @property
    def log_bytes(self) -> int:
        """Bytes of event log the runs executing in this process hold together."""
        return self.active.log_bytes

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        assert self._loop is not None
        task: asyncio.Task[None] = self._loop.create_task(coro)
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
        if not self.executor.in_process:
            return await self._hand_over(agent, request, owner, base_url, run_id)
        self.active.take(agent, owner)
        try:
            session = await open_session(self.store, request, owner)
            run = Run(agent_name=agent.name, session_id=session.id, run_id=run_id or uuid.uuid4())
            run_json = RunJSON(run)
            first = run_json.event("run.created", run)
            created = run.model_copy(update={"output": []})  # the answer's: ``run`` moves on
            # Executed here at once: created in progress, its creation and its start one store step.
            start = starting(run, run_json)
            later = self._writes_creation_later(request, run_id)
            if later:  # (see the rules): written with the run's first write
                record = RunRecord(run=run.model_copy(update={"output": []}), owner=owner)
                started = True
            else:
                started = await self.store.create_and_transition(
                    RunRecord(run=run, owner=owner), first, start.changes, events=[start.event]
                )
            if started:
                for name, value in start.changes.items():  # (the memory store shares ``run``)
                    setattr(run, name, value)
            if self.store.shared and not later:
                await self.store.renew_leases([run.run_id], self.settings.lease_ttl)
        except BaseException:
            self.active.give_back(agent, owner)
            raise

        loader = ResourceLoader(
            self.store, self.settings, base_url, self._http, owner=owner, run_id=run.run_id
        )
        session_context = SessionContext(session.id, list(session.history), session.state, loader, owner)
        record_session = None
        if request.session is not None or request.session_id is not None:
            record_session = session_recorder(self.store, session_context, loader, request.input, owner)
        assert self._host is not None and self._loop is not None
        execution = RunExecution(
            self._host, agent, run, run_json, request.input, session_context, owner, record_session
        )
        execution.started = started
        if later:
            execution.writes.defer_creation(record, first, start.changes, [start.event])
        execution.log_bytes = len(first.data)
        if started:  # (its run.in-progress is logged too)
            execution.log_bytes += len(start.event.data)
            execution.event_count += 1
        self.active.log_bytes += execution.log_bytes
        self._executions[run.run_id] = execution
        execution.mode = request.mode
        if request.mode is RunMode.STREAM:
            self._unstarted[run.run_id] = self._loop.call_later(STREAM_START_WAIT, self._start, run.run_id)
        else:
            execution.task = self._spawn(self._execute(execution))
        execution.deadline_tick = self._deadlines.watch(self._loop, execution)
        return created

    def _writes_creation_later(self, request: RunCreateRequest, run_id: uuid.UUID | None) -> bool:
        """Whether a new run's creation waits for its first write (see the rules): a sync run on a
        shared store whose id nobody else can know before its answer (no ``Idempotency-Key`` fixed
        it) and that names no session (the session's other requests could find it)."""
        return (
            self.store.shared
            and request.mode is RunMode.SYNC
            and run_id is None
            and request.session is None
            and request.session_id is None
        )

    def _start(self, run_id: uuid.UUID) -> None:
        """Start the agent of a stream run created here, if it waits for that (see the rules)."""
        handle = self._unstarted.pop(run_id, None)
        if handle is None:
            return
        handle.cancel()
        execution = self._executions.get(run_id)
        if execution is not None and execution.task is None and not execution.released:
            execution.task = self._spawn(self._execute(execution))

    # limits on active runs ------------------------------------------------------------------------
    def check_capacity(self, agent: AgentDefinition, owner: str | None) -> None:
        """Raise :class:`TooManyRequests` if a run of ``agent`` by ``owner`` would be refused now;
        takes nothing (the service asks before it takes an ``Idempotency-Key``)."""
        self.active.check(agent, owner)

    def release(self, execution: RunExecution) -> None:
        """The run has ended (or was failed while its agent still holds a thread): give back its slot
        and its bytes. Idempotent."""
        if execution.released:
            return
        execution.released = True
        self._deadlines.forget(execution, execution.deadline_tick)
        self.active.give_back(execution.agent, execution.context.owner)
        self.active.log_bytes -= execution.log_bytes
        self._executions.pop(execution.run.run_id, None)

    async def _execute(self, execution: RunExecution) -> None:
        run_id = execution.run.run_id
        listener: asyncio.Task[None] | None = None

        def listen() -> None:
            nonlocal listener
            if not execution.released:
                listener = self._spawn(self._listen(execution))

        starting = asyncio.get_running_loop().call_later(LISTEN_AFTER, listen) if self.store.shared else None
        try:
            await execution.execute()
        except Exception as exc:
            if isinstance(exc, StoreUnavailable):  # down for longer than the run waits for it
                logger.warning("run %s could not record its outcome: %s", run_id, exc)
            else:  # a bug
                logger.exception("run %s stopped before it could record its outcome", run_id)
            try:
                await self._fail(run_id, "the run stopped unexpectedly")
            except Exception as again:
                logger.warning("run %s: could not mark it failed either: %s", run_id, again)
        finally:
            if starting is not None:
                starting.cancel()
            if listener is not None:
                listener.cancel()
            self.release(execution)
            if not execution.settled.done():  # stopped without a word: its waiter reads the store
                execution.settled.set_result(None)

    async def _listen(self, execution: RunExecution) -> None:
        """Pass signals from other processes to a run executing here (once it is in the store)."""
        if execution.writes.unwritten:
            try:
                await execution.writes.write_creation()
                await self.store.renew_leases([execution.run.run_id], self.settings.lease_ttl)
            except StoreUnavailable as exc:  # its creation goes with its next write
                logger.warning("run %s: could not record it yet: %s", execution.run.run_id, exc)
                return
        while True:
            signal = await self.store.receive_signal(execution.run.run_id)
            if signal.kind == "cancel":
                execution.cancel()
            else:
                execution.deliver_resume(signal.payload)

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
        known = await self.get(run_id, owner)
        if known.run.status is RunStatus.CREATED and not self.executor.in_process:
            queued = await self._cancel_queued(known.run)  # no worker has it: nobody else would end it
            if queued is not None:
                return queued
        changes = {"status": RunStatus.CANCELLING}
        record = await self.store.update_run(run_id, changes, expect=may_become(RunStatus.CANCELLING))
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
        if self._unstarted:  # someone reads the run: its agent need not wait any longer
            self._start(run_id)
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
                executing = [
                    key for key, execution in self._executions.items() if not execution.writes.unwritten
                ]
                await self.store.renew_leases(executing, self.settings.lease_ttl)
                for run_id in await self.store.find_lost_runs():
                    if run_id not in self._executions:
                        await self._fail(run_id, "the worker running this run was lost", lost=True)
            except StoreUnavailable as exc:
                logger.warning("could not renew run leases: %s", exc)
            except Exception:
                logger.warning("could not renew run leases", exc_info=True)
            await asyncio.sleep(interval)

    async def _fail(self, run_id: uuid.UUID, reason: str, *, lost: bool = False) -> None:
        """Fail a run that will not record its outcome itself (if it has not ended yet); ``lost``: its
        lease has lapsed."""
        record = await self.store.get_run(run_id)
        if record is None or record.run.status.is_terminal:
            return
        error, expect = server_error(reason), set(may_become(RunStatus.FAILED))
        if lost and record.run.status is RunStatus.CREATED and not self.executor.in_process:
            # Never taken from its queue: the lease it was handed over with has lapsed.
            error, expect = server_error(queue_expired(self.settings), "max_queue_wait"), {RunStatus.CREATED}
        end = ending(record.run, RunStatus.FAILED, error)
        await self.store.transition(run_id, end.changes, expect=expect, events=[end.event])

    # runs executed elsewhere (see .executors) -----------------------------------------------------
    async def _hand_over(
        self,
        agent: AgentDefinition,
        request: RunCreateRequest,
        owner: str | None,
        base_url: str,
        run_id: uuid.UUID | None,
    ) -> Run:
        """Record a new run ``created`` (queued) and submit it to the executor; returns it as recorded."""
        session = await open_session(self.store, request, owner)
        run = Run(agent_name=agent.name, session_id=session.id, run_id=run_id or uuid.uuid4())
        await self.store.create_run(RunRecord(run=run, owner=owner), RunJSON(run).event("run.created", run))
        await self.store.hand_over(run.run_id, self.settings.max_queue_wait + self.settings.lease_ttl)
        named = request.session is not None or request.session_id is not None
        name = self.executor.name
        trace = self.reports.trace_carrier()  # (with telemetry: the worker's run span continues ours)
        job = RunJob(
            name, run.run_id, agent.name, request.input, session, named, owner, base_url, request.mode, trace
        )
        try:
            await self.executor.submit(job)
        except Exception as exc:  # the broker is down: the run fails, the client gets 503
            logger.warning("run %s could not be queued: %s", run.run_id, exc)
            await self._fail(run.run_id, "the run could not be queued")
            raise ACPError(server_error("the task queue is unreachable"), status=503) from exc
        return run

    async def _cancel_queued(self, run: Run) -> RunRecord | None:
        """End a run that waits in the executor's queue ``cancelled``; ``None`` if a worker took it."""
        end = ending(run, RunStatus.CANCELLED)
        queued = {RunStatus.CREATED}
        return await self.store.transition(run.run_id, end.changes, expect=queued, events=[end.event])

    async def execute(self, job: RunJob) -> None:
        """Execute a run that another process recorded and handed over (in a worker of the executor);
        returns once the run has ended. A run that is gone, taken by another worker, cancelled or
        queued too long is not executed (see :func:`.executors.claim`)."""
        await self.ensure_started()
        assert self._host is not None and self._loop is not None
        agent = self.registry.get(job.agent_name)
        if agent is None:
            await self._fail(job.run_id, f"this worker has no agent {job.agent_name!r}")
            return
        record = await claim(self.store, self.settings, job)
        if record is None:
            return
        run = record.run
        await self.store.renew_leases([run.run_id], self.settings.lease_ttl)  # its lease is ours now
        try:
            self.active.take(agent, job.owner)
        except ACPError as exc:  # a limit on this worker's active runs
            await self._fail(run.run_id, exc.error.message)
            return
        loader = ResourceLoader(
            self.store, self.settings, job.base_url, self._http, owner=job.owner, run_id=run.run_id
        )
        session = job.session
        session_context = SessionContext(session.id, list(session.history), session.state, loader, job.owner)
        record_session = None
        if job.record_session:
            record_session = session_recorder(self.store, session_context, loader, job.input, job.owner)
        execution = RunExecution(
            self._host, agent, run, RunJSON(run), job.input, session_context, job.owner, record_session
        )
        execution.started = True  # claimed: in progress already
        execution.mode, execution.trace_parent = job.mode, job.trace
        self._executions[run.run_id] = execution
        execution.task = self._spawn(self._execute(execution))
        execution.deadline_tick = self._deadlines.watch(self._loop, execution)
        if self._stopping is not None:  # claimed while stop_all ran: it is failed like the others
            execution.fail(server_error(self._stopping, "worker_shutdown"))
        await asyncio.shield(execution.task)

    async def stop_all(self, reason: str, *, wait: float = 5.0) -> None:
        """Fail every run executing here with ``reason`` (``data.reason`` ``worker_shutdown``) and
        stop its agent: the worker must stop before its runs end. Returns once their failures are
        recorded (or after ``wait`` seconds)."""
        self._stopping = reason
        executions = list(self._executions.values())
        for execution in executions:
            execution.fail(server_error(reason, "worker_shutdown"))
        deadline = asyncio.get_running_loop().time() + wait
        while any(not execution.released for execution in executions):
            if asyncio.get_running_loop().time() >= deadline:
                logger.warning("%d run(s) of a stopping worker could not be failed in time", len(executions))
                return
            await asyncio.sleep(0.02)
