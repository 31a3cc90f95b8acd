"""Runs executed by Celery workers: :class:`CeleryExecutor` (the ``celery`` extra).

With it, ``POST /runs`` records the run in the shared store (Redis or the Django database) and sends
a Celery task carrying what a worker needs (run id, agent, input, session, owner, base URL); a Celery
worker process, which builds the same ACP service (same registry, store and settings: it imports the
same app), executes the run with the same engine and writes its events to the store. Any web process
serves the stream, ``GET /runs/{id}``, the events, cancel and resume, as it does for a run executing in
another web process (cancel and resume reach the worker through the store's signals). docs/celery.md
says how to set it up per framework, and what happens when things fail.

Rules this module keeps:

* Nothing happens at import time, nor when an executor is made, but registering the task on the
  Celery app and connecting to the worker's signals (which only a worker sends).
* A task is acknowledged when the worker receives it (Celery's default, ``acks_late=False``), and the
  run is claimed by a compare-and-set of its status (``acp_adapters.core.executors.claim``): a run that
  began is never executed twice. A worker killed mid-run loses its task; the run's lease lapses and
  any process fails it ("the worker running this run was lost") within ``lease_ttl`` and a third.
* The worker runs one event loop per process (the bridge's, :mod:`acp_adapters.bridge`, re-made
  after a fork): a task thread hands its run to that loop and waits for its end. Pools: ``threads``
  (runs of one worker share its loop; the examples' choice), ``solo`` (one run at a time) and
  ``prefork`` (each child process its own loop, one run at a time); ``gevent`` and ``eventlet`` are
  refused (their monkey-patching and an asyncio loop in a thread do not mix).
* A warm shutdown (``SIGTERM``) lets the runs executing go on for ``shutdown_grace`` seconds, then fails
  them ("the Celery worker stopped before the run ended", ``data.reason`` ``worker_shutdown``) and stops
  their agents; the worker then exits. A prefork child told to stop (``SIGTERM``) does the same at once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from celery import Celery, signals

from .bridge import call_on_process_loop, running_process_loop
from .core.executors import Executor, RunJob

if TYPE_CHECKING:
    from .core.service import ACPService

__all__ = ["TASK_NAME", "CeleryExecutor"]

logger = logging.getLogger("acp_adapters.celery")

#: The name of the task that executes a run (route it to a queue of its own with ``task_routes``).
TASK_NAME = "acp_adapters.execute_run"
#: The reason a run fails with when its worker stops before it ended.
STOPPED = "the Celery worker stopped before the run ended"
#: How long a stopping worker waits for the failures of its runs to be recorded.
_STOP_WAIT = 5.0

#: This process's executors by name: a worker finds the service of a job by its executor's name.
_EXECUTORS: dict[str, CeleryExecutor] = {}
_SIGNALS_CONNECTED = threading.Lock()
_connected = False


class CeleryExecutor(Executor):
    """Hands the runs of a service to Celery workers.

    ``app`` is your Celery app (its broker carries the tasks). ``name`` tells the mounts of a project
    apart (each mount has an executor of its own: ``name="acp-private"``); a worker executes the runs of
    every mount whose service it has built. ``queue`` is the Celery queue of the tasks (default: the
    app's routing). ``shutdown_grace`` is how long a worker told to stop lets its runs go on before it
    fails them.

    Pass it to the adapter as ``executor=`` (``ACPApp``, Flask's ``ACP``, ``ACPSite`` or Django's
    ``ACP_ADAPTERS["EXECUTOR"]``), with a shared store; the worker process must build the same service
    (import the app, or call the app factory, in the module ``celery -A`` loads).
    """

    in_process = False

    def __init__(
        self, app: Celery, *, name: str = "acp", queue: str | None = None, shutdown_grace: float = 20.0
    ) -> None:
        if not isinstance(app, Celery):
            raise TypeError(
                f"CeleryExecutor(app) needs a Celery app, Celery('proj'), not {type(app).__name__}"
            )
        if not isinstance(name, str) or not name:
            raise ValueError(f"CeleryExecutor(name=...) must be a non-empty string, not {name!r}")
        if (
            isinstance(shutdown_grace, bool)
            or not isinstance(shutdown_grace, (int, float))
            or shutdown_grace < 0
        ):
            raise ValueError(
                f"CeleryExecutor(shutdown_grace=...) must be seconds, 0 or more, not {shutdown_grace!r}"
            )
        self.app = app
        self.name = name
        self.queue = queue
        self.shutdown_grace = float(shutdown_grace)
        self._service: ACPService | None = None
        if TASK_NAME not in app.tasks:
            app.task(name=TASK_NAME, ignore_result=True, acks_late=False)(execute_run)
        _EXECUTORS[name] = self
        _connect_worker_signals()

    def bind(self, service: ACPService) -> None:
        """Serve ``service``'s runs; refuses a store of one process and a second mount."""
        if not service.store.shared:
            raise ValueError(
                f"the Celery executor needs a shared store, not {type(service.store).__name__}: a Celery "
                "worker must read the runs the web process records (RedisStore.from_url(...), "
                "ACP_STORE=redis://127.0.0.1:6379/0, or Django's database store)"
            )
        known = self._service
        if known is not None and known.registry is not service.registry:
            raise ValueError(
                f"the Celery executor {self.name!r} serves another mount already: give each mount an "
                f"executor of its own, CeleryExecutor(app, name='acp-private')"
            )
        self._service = service

    async def submit(self, job: RunJob) -> None:
        """Send the job as a Celery task (in a thread: the broker client blocks)."""
        send = functools.partial(self.app.send_task, TASK_NAME, args=[job.to_json()], queue=self.queue)
        await anyio.to_thread.run_sync(send)

    def service(self) -> ACPService:
        """The service whose runs this executor's jobs are (in a worker); the mounts made on first use
        (Django's sites) are made now if need be."""
        if self._service is None:
            from .workers import MOUNT_LOADERS

            for load in MOUNT_LOADERS:
                load()
        if self._service is None:
            raise RuntimeError(
                f"no ACP service uses the Celery executor {self.name!r} in this worker: build the app "
                "(or call its factory) in the module that `celery -A` loads, so that the worker has "
                "the same agents, store and settings as the web processes"
            )
        return self._service


def execute_run(job: dict[str, Any]) -> None:
    """The Celery task: execute the run of ``job`` (:meth:`RunJob.to_json`) and return once it ended."""
    run_job = RunJob.from_json(job)
    executor = _EXECUTORS.get(run_job.executor)
    if executor is None:
        raise RuntimeError(
            f"run {run_job.run_id}: no Celery executor named {run_job.executor!r} in this worker "
            f"(it has {sorted(_EXECUTORS)}): the worker must import the module that makes it"
        )
    _stop_runs_on_sigterm_in_a_child()
    call_on_process_loop(executor.service().engine.execute, run_job)


# the worker's life ------------------------------------------------------------------------------
_main_pid = 0
_worker: Any = None
#: The process (a prefork child) whose SIGTERM handler is installed.
_child_handler = 0


def _connect_worker_signals() -> None:
    global _connected
    with _SIGNALS_CONNECTED:
        if _connected:
            return
        _connected = True
    signals.worker_init.connect(_on_worker_init, weak=False)
    signals.worker_shutting_down.connect(_on_worker_shutting_down, weak=False)


def _on_worker_init(sender: Any = None, **_: Any) -> None:
    """In the worker's main process, before its pool starts: refuse the pools that cannot host a loop."""
    global _main_pid, _worker
    _main_pid, _worker = os.getpid(), sender
    pool = str(getattr(sender, "pool_cls", ""))
    if "gevent" in pool or "eventlet" in pool:
        raise RuntimeError(
            "acp-adapters runs cannot execute on Celery's gevent or eventlet pool: use "
            "--pool threads (or prefork, or solo)"
        )


def _stop_runs_on_sigterm_in_a_child() -> None:
    """In a prefork child (a task runs in its main thread): a SIGTERM (the pool stopping it, a grace
    that ran out) fails its runs before it exits. Installed by its first task: billiard installs its
    own handlers after the child's initialisation."""
    global _child_handler
    if _child_handler == os.getpid() or os.getpid() == _main_pid:
        return
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _child_told_to_stop)
        _child_handler = os.getpid()


def _child_told_to_stop(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second one ends it at once

    def stop_and_exit() -> None:
        try:
            _stop_runs_here(STOPPED)
        finally:
            os._exit(0)

    threading.Thread(target=stop_and_exit, name="acp-adapters-stop", daemon=True).start()


def _on_worker_shutting_down(how: str = "Warm", **_: Any) -> None:
    """In the worker's main process (in its signal handler): give the runs their grace, then stop them."""
    grace = max((executor.shutdown_grace for executor in _EXECUTORS.values()), default=0.0)
    if how != "Warm":  # a cold shutdown stops the tasks now
        grace = 0.0
    threading.Thread(target=_after_grace, args=(grace,), name="acp-adapters-grace", daemon=True).start()


def _after_grace(grace: float) -> None:
    time.sleep(grace)
    _stop_runs_here(STOPPED)
    pool = getattr(_worker, "pool", None)
    children = getattr(pool, "info", {}).get("processes", []) if pool is not None else []
    for pid in children:  # a prefork pool: each child stops its runs when told to stop
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def _stop_runs_here(reason: str) -> None:
    """Fail the runs executing in this process with ``reason`` and stop their agents."""
    if running_process_loop() is None:
        return  # no run has executed here
    engines = [executor._service.engine for executor in _EXECUTORS.values() if executor._service is not None]
    for engine in engines:
        try:
            call_on_process_loop(functools.partial(engine.stop_all, wait=_STOP_WAIT), reason)
        except Exception:
            logger.exception("could not fail the runs of a stopping worker")
