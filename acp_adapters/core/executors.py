"""Executors: where the runs a service creates execute.

By default a run executes in the process that created it, as a task on that process's event loop
(:class:`Executor`, the in-process executor). A *remote* executor hands it to other processes instead
(``acp_adapters.celery.CeleryExecutor``: a Celery worker): the web process records the run in the
shared store and submits a :class:`RunJob`; a worker process, which builds the same service (same
registry, same store, same settings), takes the job and executes the run with the same engine
(:meth:`~acp_adapters.core.engine.RunEngine.execute`), writing its events to the store, from which any
web process serves the stream, ``GET /runs/{id}``, the events, cancel and resume (the last two reach
the worker through the store's signals, as they reach another web worker).

Rules this module keeps:

* A remote executor needs a shared store: the service refuses any other when it is made.
* A handed-over run is recorded ``created`` (queued) with a lease of ``max_queue_wait`` seconds (and a
  lease time more): nobody renews it while it waits, so a run whose job was lost (a broker that lost
  its queue) is failed by any process's lease keeping once that lapses. The worker that takes it
  renews it like a run of its own.
* A run executes at most once: a worker claims it by moving it from ``created`` to ``in-progress``, a
  compare-and-set in the store that exactly one claimant wins (:func:`claim`). A job delivered twice
  (a broker's redelivery, a retry) finds the run claimed and does nothing: an agent has side effects
  (it calls models, sends mail, writes data), and running it twice is worse than failing it.
* A job that waited longer than ``max_queue_wait`` is not started: its run fails with a
  ``server_error`` whose ``data.reason`` is ``max_queue_wait``.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from typing import TYPE_CHECKING, Any, ClassVar

from .events import RunJSON
from .lifecycle import ending, may_become, server_error
from .models import Error, Message, Run, RunMode, RunStatus, utc_now
from .store import RunRecord, SessionRecord, Store

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["Executor", "RunJob", "claim", "queue_expired"]

logger = logging.getLogger("acp_adapters")


@dataclasses.dataclass(frozen=True)
class RunJob:
    """What a worker needs to execute a run that another process recorded: plain data, sent as JSON."""

    #: The name of the executor that submitted it (a worker serves the services of several).
    executor: str
    run_id: uuid.UUID
    agent_name: str
    input: list[Message]
    #: The session as the run opened it: its id, the history and state it starts with, and whether
    #: the run is added to it when it completes (the request named a session).
    session: SessionRecord
    record_session: bool
    owner: str | None
    #: The absolute URL of the mount, the base of the resource URLs the run hands out.
    base_url: str
    #: The mode of the request that created the run (for its log line and span; ``None``: not known).
    mode: RunMode | None = None
    #: The W3C trace context of that request (``traceparent``, ``tracestate``) with ``Settings.telemetry``
    #: on: the worker's run span is its child. ``None`` without telemetry.
    trace: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        """The job as JSON-compatible data (what a task queue carries)."""
        data: dict[str, Any] = {
            "executor": self.executor,
            "run_id": str(self.run_id),
            "agent_name": self.agent_name,
            "input": [message.model_dump(mode="json", exclude_none=True) for message in self.input],
            "session": {
                "id": str(self.session.id),
                "history": list(self.session.history),
                "state": self.session.state,
                "record": self.record_session,
            },
            "owner": self.owner,
            "base_url": self.base_url,
        }
        if self.mode is not None:
            data["mode"] = self.mode.value
        if self.trace:
            data["trace"] = dict(self.trace)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunJob:
        """The job :meth:`to_json` gave. Raises ``ValueError`` (or ``KeyError``) on anything else."""
        session = data["session"]
        owner = data["owner"]
        mode, trace = data.get("mode"), data.get("trace")  # (absent from the jobs of older releases)
        return cls(
            executor=str(data["executor"]),
            run_id=uuid.UUID(data["run_id"]),
            agent_name=str(data["agent_name"]),
            input=[Message.model_validate(message) for message in data["input"]],
            session=SessionRecord(
                id=uuid.UUID(session["id"]),
                history=[str(url) for url in session["history"]],
                state=None if session["state"] is None else str(session["state"]),
                owner=owner,
            ),
            record_session=bool(session["record"]),
            owner=None if owner is None else str(owner),
            base_url=str(data["base_url"]),
            mode=None if mode is None else RunMode(mode),
            trace=None if trace is None else {str(key): str(value) for key, value in dict(trace).items()},
        )


class Executor:
    """Where a service's runs execute. This class is the default: in the process that creates them.

    A subclass that executes them elsewhere sets :attr:`in_process` to false and implements
    :meth:`submit`; the engine then records each new run and submits it instead of starting it, and
    a worker process calls :meth:`~acp_adapters.core.engine.RunEngine.execute` with the job.
    """

    #: Whether runs execute in the process that creates them (``False``: :meth:`submit` hands them over).
    in_process: ClassVar[bool] = True
    #: The executor's name, carried by its jobs (a worker finds the service that executes them by it).
    name: str = "in-process"

    def bind(self, service: Any) -> None:
        """The :class:`~acp_adapters.core.service.ACPService` that hands its runs to this executor has
        been made (typed ``Any``: the service imports this module); raise ``ValueError`` if the
        executor cannot serve it (a remote executor and a store of one process)."""

    async def submit(self, job: RunJob) -> None:
        """Hand a recorded run over to be executed elsewhere (only when not :attr:`in_process`)."""
        raise NotImplementedError(f"{type(self).__name__} executes runs in process: it takes no jobs")


def queue_expired(settings: Settings) -> str:
    """The message of a run that waited for a worker longer than ``max_queue_wait``."""
    return f"no worker started the run within {settings.max_queue_wait:g} s (max_queue_wait)"


async def claim(store: Store, settings: Settings, job: RunJob) -> RunRecord | None:
    """Claim the job's run for this worker: ``created`` becomes ``in-progress`` (announced) in one
    compare-and-set, which one claimant wins. Returns the run as claimed, or ``None`` when this worker
    must not execute it (and has recorded what it must):

    * the run is gone (expired) or already claimed (a job delivered twice): nothing to do;
    * it was cancelled while queued and is still ``cancelling``: it ends ``cancelled``;
    * it waited longer than ``max_queue_wait``: it fails.
    """
    record = await store.get_run(job.run_id)
    if record is None:
        logger.warning("run %s: gone from the store before a worker took it", job.run_id)
        return None
    run = record.run
    if run.status is RunStatus.CANCELLING:  # (cancelled while queued, by a process of an older release)
        await _end(store, run, RunStatus.CANCELLED, None, {RunStatus.CANCELLING})
        return None
    if run.status is not RunStatus.CREATED:
        if not run.status.is_terminal:
            logger.warning("run %s is %s already: not executed twice", job.run_id, run.status.value)
        return None
    waited = (utc_now() - run.created_at).total_seconds()
    if waited > settings.max_queue_wait:
        error = server_error(queue_expired(settings), "max_queue_wait")
        await _end(store, run, RunStatus.FAILED, error, {RunStatus.CREATED})
        return None
    changes = {"status": RunStatus.IN_PROGRESS}
    event = RunJSON(run).event("run.in-progress", run, changes)
    claimed = await store.transition(job.run_id, changes, expect={RunStatus.CREATED}, events=[event])
    if claimed is None:  # another worker claimed it, or a client cancelled it, a moment ago
        again = await store.get_run(job.run_id)
        if again is not None and again.run.status is RunStatus.CANCELLING:
            await _end(store, again.run, RunStatus.CANCELLED, None, {RunStatus.CANCELLING})
        return None
    if claimed.run is not run:  # (a store that keeps our object has changed it already)
        claimed.run.status = RunStatus.IN_PROGRESS
    return claimed


async def _end(
    store: Store,
    run: Run,
    status: RunStatus,
    error: Error | None,
    expect: set[RunStatus],
) -> None:
    end = ending(run, status, error)
    await store.transition(run.run_id, end.changes, expect=expect & may_become(status), events=[end.event])
