"""The A2A operations on tasks, as calls of the run engine every ACP mount uses.

Rules this module keeps:

* A2A has no engine of its own: a message creates a run (``RunEngine.create``) or resumes one that
  awaits input (``RunEngine.resume``); reading, cancelling and following a task read, cancel and
  follow its run. Owner scoping, limits and the store are the engine's, as for ACP.
* A task belongs to the agent it was sent to: asked through another agent's URL it does not exist.
* A new task always has a context (the session its run names, kept in the store like an ACP
  session named by ``session_id``): a client that sends the next message with the same
  ``contextId`` continues that session.
* Everything that can refuse a request (ids, the message, the caps on input, the authorize hook, a
  limit on work, the task's state) is checked before a stream starts: bad input gets an error, never
  a stream that dies.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone

from acp_adapters.core.agents import AgentDefinition
from acp_adapters.core.bodies import check_create_caps, check_resume_caps
from acp_adapters.core.engine import RunEngine
from acp_adapters.core.errors import ACPError
from acp_adapters.core.events import run_of_event
from acp_adapters.core.models import (
    MessageAwaitResume,
    Run,
    RunCreateRequest,
    RunMode,
    RunResumeRequest,
    RunStatus,
)
from acp_adapters.core.settings import Settings
from acp_adapters.core.store import RunRecord, Store

from .errors import InvalidParams, TaskNotCancelable, TaskNotFound, UnsupportedOperation, from_acp
from .index import context_index, owner_index, record_task, task_ids
from .mapping import STATE_OF, EventMapper, acp_message, task_of
from .models import (
    ListTasksRequest,
    ListTasksResponse,
    Message,
    SendMessageRequest,
    StreamResponse,
    Task,
)

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "Caller", "TaskOperations", "TaskStream"]

#: ``ListTasks`` page sizes, as a2a-sdk has them.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
#: How long ``CancelTask`` waits for the run to end before it answers with the task as it stands.
CANCEL_WAIT = 10.0

#: A stream of a task: its items, ``None`` for a heartbeat (nothing happened for a while).
TaskStream = AsyncIterator["StreamResponse | None"]


class Caller:
    """Who asks, and for which agent: the owner, the agent, the authorize hook bound to the request."""

    def __init__(
        self,
        owner: str | None,
        agent: AgentDefinition,
        authorize: Callable[[str], Awaitable[None]],
        base_url: str,
    ) -> None:
        self.owner = owner
        self.agent = agent
        self.authorize = authorize
        #: The base URL a new run's session resources are served under (the ACP mount's).
        self.base_url = base_url


class TaskOperations:
    """The task operations of A2A over one engine."""

    def __init__(self, engine: RunEngine, settings: Callable[[], Settings]) -> None:
        self.engine = engine
        self._settings = settings

    @property
    def store(self) -> Store:
        return self.engine.store

    @property
    def settings(self) -> Settings:
        return self._settings()

    # messages -------------------------------------------------------------------------------------
    async def send(self, caller: Caller, params: SendMessageRequest) -> Task:
        """``SendMessage``: the task once it awaits input or ends, or at once (``returnImmediately``);
        its history is the message (none with ``historyLength`` 0)."""
        configuration = params.configuration
        wait = not (configuration is not None and configuration.return_immediately)
        history_length = configuration.history_length if configuration is not None else None
        _check_history_length(history_length)
        mode = RunMode.SYNC if wait else RunMode.ASYNC
        message = params.message
        if message.task_id:
            record, start = await self._continue(caller, message, mode)
            history = [] if history_length == 0 else [message]
            if wait:
                return await self._settled(record.run.run_id, start, history, caller.owner)
            record = await self._get(caller, record.run.run_id)
            return task_of(record.run, history=history)
        run = await self._create(caller, message, mode)
        history = [] if history_length == 0 else [_in_task(message, run)]
        if wait:
            return await self._settled(run.run_id, 0, history, caller.owner)
        return task_of(run, history=history)

    async def send_streaming(self, caller: Caller, params: SendMessageRequest) -> TaskStream:
        """``SendStreamingMessage``: the task's items from now on, once the message is taken."""
        message = params.message
        if message.task_id:
            record, start = await self._continue(caller, message, RunMode.STREAM)
            return await self._joined(record.run.run_id, start, [message])
        run = await self._create(caller, message, RunMode.STREAM)
        return self._stream(run.run_id, 0, EventMapper([_in_task(message, run)]))

    async def _create(self, caller: Caller, message: Message, mode: RunMode) -> Run:
        context = (
            _uuid(message.context_id, "contextId", InvalidParams) if message.context_id else uuid.uuid4()
        )
        request = RunCreateRequest(
            agent_name=caller.agent.name, session_id=context, input=[acp_message(message)], mode=mode
        )
        try:
            check_create_caps(request, self.settings)
            run = await self.engine.create(request, owner=caller.owner, base_url=caller.base_url)
        except ACPError as exc:
            raise from_acp(exc, not_found=InvalidParams) from None
        await record_task(self.store, caller.agent.name, context, run.run_id, caller.owner)
        return run

    async def _continue(self, caller: Caller, message: Message, mode: RunMode) -> tuple[RunRecord, int]:
        """Resume the task the message names, which must await input; returns it and the index of
        its first event after the await."""
        record = await self._get(caller, _uuid(message.task_id, "taskId", TaskNotFound))
        run = record.run
        if message.context_id and message.context_id != str(run.session_id):
            raise InvalidParams(
                f"contextId {message.context_id[:80]!r} is not the context of task {run.run_id}"
            )
        if run.status is not RunStatus.AWAITING:
            state = STATE_OF[run.status].value
            raise UnsupportedOperation(
                f"task {run.run_id} is {state}: only a task in TASK_STATE_INPUT_REQUIRED takes a message",
                {"state": state},
            )
        resume = RunResumeRequest(await_resume=MessageAwaitResume(message=acp_message(message)), mode=mode)
        try:
            check_resume_caps(resume, self.settings)
            start = await self.engine.resume(run.run_id, resume, caller.owner)
        except ACPError as exc:
            raise from_acp(exc) from None
        return record, start

    async def _settled(
        self, run_id: uuid.UUID, start: int, history: list[Message], owner: str | None
    ) -> Task:
        """The task once its run awaits input or ends."""
        last = await self.engine.wait(run_id, start)
        if last is not None:
            run = Run.model_validate_json(run_of_event(last))
        else:
            run = (await self.engine.get(run_id, owner)).run
        return task_of(run, history=history)

    # reading --------------------------------------------------------------------------------------
    async def _get(self, caller: Caller, run_id: uuid.UUID) -> RunRecord:
        """The caller's run of this agent (authorized for it), or :class:`TaskNotFound`."""
        try:
            record = await self.engine.get(run_id, caller.owner)
        except ACPError as exc:
            raise from_acp(exc) from None
        if record.run.agent_name != caller.agent.name:
            raise TaskNotFound(f"task {run_id} not found")
        await caller.authorize(record.run.agent_name)
        return record

    async def get(self, caller: Caller, task_id: str, history_length: int | None = None) -> Task:
        """``GetTask``."""
        _check_history_length(history_length)
        record = await self._get(caller, _uuid(task_id, "id", TaskNotFound))
        return task_of(record.run)

    async def cancel(self, caller: Caller, task_id: str) -> Task:
        """``CancelTask``: the task once its run has stopped (or, if it takes long, as it stands)."""
        record = await self._get(caller, _uuid(task_id, "id", TaskNotFound))
        run_id = record.run.run_id
        if record.run.status.is_terminal:
            raise TaskNotCancelable(
                f"task {run_id} is {STATE_OF[record.run.status].value}: it cannot be canceled",
                {"state": STATE_OF[record.run.status].value},
            )
        start = await self.store.count_events(run_id)
        try:
            record = await self.engine.cancel(run_id, caller.owner)
        except ACPError as exc:
            raise from_acp(exc, conflict=TaskNotCancelable) from None
        if not record.run.status.is_terminal:
            try:
                last = await asyncio.wait_for(self.engine.wait(run_id, start), CANCEL_WAIT)
            except asyncio.TimeoutError:
                last = None
            if last is not None:
                return task_of(Run.model_validate_json(run_of_event(last)))
            record = await self.engine.get(run_id, caller.owner)
        return task_of(record.run)

    async def subscribe(self, caller: Caller, task_id: str) -> TaskStream:
        """``SubscribeToTask``: the task as it stands, then its items until it awaits input or ends."""
        record = await self._get(caller, _uuid(task_id, "id", TaskNotFound))
        if record.run.status.is_terminal:
            state = STATE_OF[record.run.status].value
            raise UnsupportedOperation(
                f"task {record.run.run_id} is {state}: there is nothing to subscribe to", {"state": state}
            )
        return await self._joined(record.run.run_id, None, [])

    async def _joined(self, run_id: uuid.UUID, start: int | None, history: list[Message]) -> TaskStream:
        """A stream that begins with the task as its first ``start`` events show it (all so far if
        ``None``), then its items from there on."""
        events = await self.store.read_events(run_id, 0)
        if start is None:
            start = len(events)
        mapper = EventMapper(history)
        mapper.fold(event.data for event in events[:start])
        if mapper.task is not None and mapper.task.status.state.is_terminal:  # (it ended meanwhile)
            return _only(StreamResponse(task=mapper.snapshot()))
        return self._stream(run_id, start, mapper, first=mapper.snapshot())

    async def _stream(
        self, run_id: uuid.UUID, start: int, mapper: EventMapper, first: Task | None = None
    ) -> TaskStream:
        if first is not None:
            yield StreamResponse(task=first)
        async for _, events in self.engine.follow(run_id, start):
            if not events:
                yield None
            for event in events:
                for item in mapper.items(event.data):
                    yield item

    # listing --------------------------------------------------------------------------------------
    async def list(self, caller: Caller, params: ListTasksRequest) -> ListTasksResponse:
        """``ListTasks``: the caller's tasks of this agent, in a context or (for an identified caller)
        all of them, newest first."""
        page_size = DEFAULT_PAGE_SIZE if params.page_size is None else params.page_size
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidParams(f"pageSize must be from 1 to {MAX_PAGE_SIZE}", {"pageSize": str(page_size)})
        _check_history_length(params.history_length)
        after = _timestamp_param(params.status_timestamp_after)
        state = None if params.status in (None, "TASK_STATE_UNSPECIFIED") else params.status
        if params.context_id:
            index = context_index(caller.agent.name, _uuid(params.context_id, "contextId", InvalidParams))
        elif caller.owner is not None:
            index = owner_index(caller.agent.name, caller.owner)
        else:
            raise UnsupportedOperation(
                "ListTasks needs a contextId here: this server lists all of a caller's tasks only for a "
                "caller the host identifies"
            )
        ids = await task_ids(self.store, index, caller.owner, self.settings.max_listed_tasks)
        await caller.authorize(caller.agent.name)
        records = await asyncio.gather(*(self.store.get_run(uuid.UUID(run_id)) for run_id in ids))
        runs = [
            record.run
            for record in records
            if record is not None
            and record.owner == caller.owner
            and record.run.agent_name == caller.agent.name
            and (state is None or STATE_OF[record.run.status] is state)
            and (after is None or _status_time(record.run) > after)
        ]
        begin = 0
        if params.page_token:
            cursor = _cursor(params.page_token)
            positions = {str(run.run_id): position for position, run in enumerate(runs)}
            if cursor not in positions:
                raise InvalidParams("pageToken is not one this server gave for this list, or it expired")
            begin = positions[cursor] + 1
        page = runs[begin : begin + page_size]
        more = begin + page_size < len(runs)
        return ListTasksResponse(
            tasks=[task_of(run, with_artifacts=bool(params.include_artifacts)) for run in page],
            next_page_token=_token(str(page[-1].run_id)) if more and page else "",
            page_size=page_size,
            total_size=len(runs),
        )


async def _only(item: StreamResponse) -> TaskStream:
    yield item


def _in_task(message: Message, run: Run) -> Message:
    """The client's message as part of its new task's history (with the ids the server gave)."""
    return message.model_copy(update={"task_id": str(run.run_id), "context_id": str(run.session_id)})


def _uuid(value: str | None, name: str, error: type[InvalidParams] | type[TaskNotFound]) -> uuid.UUID:
    """An id this server gave (a UUID); anything else cannot be one of its tasks or contexts."""
    try:
        return uuid.UUID(value or "")
    except ValueError:
        if error is TaskNotFound:
            raise TaskNotFound(f"task {str(value)[:80]!r} not found") from None
        raise InvalidParams(
            f"{name} {str(value)[:80]!r} is not one this server gave (its ids are UUIDs)", {"field": name}
        ) from None


def _check_history_length(value: int | None) -> None:
    if value is not None and value < 0:
        raise InvalidParams("historyLength must not be negative", {"historyLength": str(value)})


def _timestamp_param(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParams("statusTimestampAfter must be an RFC 3339 date-time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _status_time(run: Run) -> datetime:
    return run.finished_at or run.created_at


def _token(run_id: str) -> str:
    return base64.urlsafe_b64encode(run_id.encode()).decode().rstrip("=")


def _cursor(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, ValueError):
        raise InvalidParams("pageToken is not one this server gave") from None
