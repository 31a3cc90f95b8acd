"""The bridge between synchronous (WSGI) servers and the async core: one event loop per process.

Rules this module keeps:

* One long-lived event loop per process, in a daemon thread (anyio's blocking portal), shared by
  every :class:`SyncBridge` of the process. It starts on first use, not at import: under a pre-fork
  server (gunicorn) that is in the worker. A process forked after it started gets its own loop on
  its first request. At exit the services are closed and the loop stops, in bounded time.
* A request thread hands its request to the loop and waits for the answer. Runs are tasks on the
  loop, so an async-mode run goes on after its response. The hand-off is one
  ``call_soon_threadsafe`` that starts a task, and a lock the task's completion releases: a
  ``BlockingPortal.call`` costs two round trips between the threads and several futures per call.
* The hand-off releases the request thread from inside the task as soon as its answer is ready. A
  stream's first chunk is taken in that same task, before the agent's first turn, and comes back
  with the headers; the loop then pauses (a few milliseconds at most) while the server writes it:
  a thread woken while the loop runs Python waits a GIL switch interval (5 ms) before each step.
* The rest of a stream is pumped by one task into a bounded memory stream, which the WSGI iterable
  reads in batches (the core's async iterator is stepped by one task after the other, never by two
  at once). Closing the iterable (the client went away) cancels the pump and closes the core's
  stream: that ends the subscription, never the run.
* An event loop that may end with its request (a test client's) must not host runs: an async adapter
  asks :func:`loop_outlives_request` and, if not, answers through :meth:`SyncBridge.ahandle`, on the
  process's loop.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures
import contextlib
import contextvars
import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import anyio
from anyio.from_thread import BlockingPortal
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .core.engine import RunEngine
from .core.http import Headers, Request, Response, StreamResponse

__all__ = [
    "BridgedService",
    "SyncBridge",
    "SyncStreamBody",
    "SyncStreamResponse",
    "all_bridges",
    "call_on_process_loop",
    "loop_outlives_request",
    "running_process_loop",
]

logger = logging.getLogger("acp_adapters")

#: Chunks a stream may hold between the pump and a slow reader before the pump waits.
STREAM_BUFFER = 64
#: Most bytes one read of a stream returns (chunks that are ready are joined into one write).
BATCH_BYTES = 64 * 1024
#: Longest the loop pauses after that hand-off while the server writes the headers and first chunk.
FIRST_WRITE_WAIT = 0.005
#: How long closing waits for the pump to finish, and exit for the services and loop to stop.
CLOSE_TIMEOUT = 5.0
#: The order in which bridges are made.
_MADE = itertools.count()
#: How often a request thread waiting for its answer checks that the loop thread still runs.
LIVENESS_CHECK = 1.0

T = TypeVar("T")
R = TypeVar("R")


class _Call:
    """One request thread's call to the loop: what to run, and the lock its completion releases.

    The lock is released by the task itself as soon as the answer is ready, not by a done callback,
    which the loop would run only after the tasks already waiting (a busy agent's next turn).
    """

    __slots__ = ("arg", "context", "done", "error", "func", "result")

    def __init__(self, func: Callable[[Any], Coroutine[Any, Any, Any]], arg: Any) -> None:
        self.func = func
        self.arg = arg
        self.context = contextvars.copy_context()
        self.done = threading.Lock()
        self.done.acquire()
        self.result: Any = None
        self.error: BaseException | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        # On the loop. The task runs in a copy of the calling thread's context, as with portal.call.
        try:
            task = self.context.run(loop.create_task, self._run())
        except BaseException as exc:  # the caller raises it; the other calls of the batch go on
            self._finish(exc)
        else:
            task.add_done_callback(self._cancelled_before_running)

    async def _run(self) -> None:
        try:
            result = await self.func(self.arg)
        except Exception as exc:  # the caller raises it
            self._finish(exc)
            return
        except asyncio.CancelledError:  # only when the loop stops under it (process exit)
            self._finish(RuntimeError("the ACP event loop stopped while answering"))
            raise
        except BaseException as exc:
            self._finish(exc)
            raise
        self.result = result
        self._finish(None)
        if isinstance(result, SyncStreamResponse):
            result.body.let_reader_write()

    def _finish(self, error: BaseException | None) -> None:
        self.error = error
        self.done.release()

    def _cancelled_before_running(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() and self.done.locked() and self.result is None and self.error is None:
            self._finish(RuntimeError("the ACP event loop stopped while answering"))


class _LoopThread:
    """A running event loop in its own thread, its portal, and the fast way to call it.

    Calls queue up in ``_pending`` and one ``call_soon_threadsafe`` starts every call waiting: under
    load the loop is woken (a write to its self-pipe, which also hands the GIL around) once per
    batch, not once per request.
    """

    __slots__ = ("_pending", "_woken", "loop", "pid", "portal", "thread")

    def __init__(
        self, portal: BlockingPortal, loop: asyncio.AbstractEventLoop, thread: threading.Thread
    ) -> None:
        self.portal = portal
        self.loop = loop
        self.thread = thread
        self.pid = os.getpid()
        self._pending: collections.deque[_Call] = collections.deque()
        self._woken = False

    def call(self, func: Callable[[T], Coroutine[Any, Any, R]], arg: T) -> R:
        """Run ``func(arg)`` as a task on the loop and wait for its result in this thread."""
        if threading.get_ident() == self.thread.ident:
            raise RuntimeError("the ACP bridge cannot be called from its own event loop's thread")
        call = _Call(func, arg)
        self._pending.append(call)
        # Appended before reading the flag: either the wake-up that set it has not yet cleared it
        # (and will start this call), or this thread wakes the loop. At worst a wake-up finds
        # nothing to do.
        if not self._woken:
            self._woken = True
            try:
                self.loop.call_soon_threadsafe(self._start_pending)
            except RuntimeError:  # the loop is closed: the process is exiting
                self._woken = False
                raise
        while not call.done.acquire(timeout=LIVENESS_CHECK):
            if not self.thread.is_alive():
                raise RuntimeError("the ACP event loop has stopped")
        if call.error is not None:
            raise call.error
        result: R = call.result
        return result

    def _start_pending(self) -> None:
        self._woken = False
        pending = self._pending
        while pending:
            pending.popleft().start(self.loop)


class _ProcessLoop:
    """The process's event loop thread, started lazily and re-created after a fork."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: _LoopThread | None = None
        self.bridges: weakref.WeakSet[SyncBridge] = weakref.WeakSet()

    def current(self) -> _LoopThread:
        """The loop thread of this process, started if need be."""
        current = self._current
        if current is not None and current.pid == os.getpid():
            return current
        with self._lock:
            current = self._current
            if current is None or current.pid != os.getpid():
                current = self._current = _start_loop_thread()
            return current

    def running(self) -> _LoopThread | None:
        """The loop thread if it runs in this process, without starting one."""
        current = self._current
        return current if current is not None and current.pid == os.getpid() else None

    def portal(self) -> BlockingPortal:
        """The running portal of this process, started if need be."""
        return self.current().portal

    def running_portal(self) -> BlockingPortal | None:
        """The portal if it runs in this process, without starting one."""
        current = self.running()
        return current.portal if current is not None else None

    def forget_after_fork(self) -> None:
        # The loop's thread does not exist in a forked child and the lock may have been held by a
        # thread that does not exist either: start afresh. Nothing of the parent's loop may be
        # finalised here (that would wait for the missing thread), hence no context manager.
        self._lock = threading.Lock()
        self._current = None

    def shutdown(self) -> None:
        """Close every bridge's service and stop the loop (at exit), waiting at most a few seconds."""
        with self._lock:
            current, self._current = self._current, None
        if current is None or current.pid != os.getpid():
            return
        portal, thread = current.portal, current.thread
        bridges = list(self.bridges)

        def stop() -> None:
            for bridge in bridges:
                bridge.close_on(portal)
            with contextlib.suppress(RuntimeError):
                portal.call(portal.stop, True)

        # Bounded: an agent blocked in a thread must not keep the process from exiting.
        deadline = time.monotonic() + CLOSE_TIMEOUT
        stopper = threading.Thread(target=stop, name="acp-adapters-shutdown", daemon=True)
        stopper.start()
        stopper.join(CLOSE_TIMEOUT)
        thread.join(max(deadline - time.monotonic(), 0.1))


def _start_loop_thread() -> _LoopThread:
    """Run an event loop with a blocking portal in a new daemon thread.

    What ``anyio.from_thread.start_blocking_portal`` does, without its context manager: a forked
    child must be able to drop the parent's portal without finalising anything.
    """
    ready: concurrent.futures.Future[tuple[BlockingPortal, asyncio.AbstractEventLoop]]
    ready = concurrent.futures.Future()

    async def serve() -> None:
        async with BlockingPortal() as portal:
            ready.set_result((portal, asyncio.get_running_loop()))
            await portal.sleep_until_stopped()

    def run() -> None:
        try:
            anyio.run(serve)
        except BaseException as exc:
            if ready.done():
                logger.exception("the ACP event loop stopped with an error")
            else:
                ready.set_exception(exc)

    thread = threading.Thread(target=run, name="acp-adapters-loop", daemon=True)
    thread.start()
    portal, loop = ready.result()
    return _LoopThread(portal, loop, thread)


_LOOP = _ProcessLoop()


def call_on_process_loop(func: Callable[[T], Coroutine[Any, Any, R]], arg: T) -> R:
    """Run ``func(arg)`` as a task on this process's event loop (started if need be) and wait for its
    result in the calling thread: for code that serves the core outside a request, such as a task
    queue's worker executing a run (``acp_adapters.celery``). Not from the loop's own thread."""
    return _LOOP.current().call(func, arg)


def running_process_loop() -> asyncio.AbstractEventLoop | None:
    """This process's event loop if it runs (without starting it), else ``None``."""
    current = _LOOP.running()
    return current.loop if current is not None else None


def all_bridges() -> list[SyncBridge]:
    """Every :class:`SyncBridge` of this process still in use, oldest first."""
    return sorted(_LOOP.bridges, key=lambda bridge: bridge.made)


atexit.register(_LOOP.shutdown)
if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_LOOP.forget_after_fork)


class BridgedService(Protocol):
    """What a bridge serves: an :class:`~acp_adapters.core.service.ACPService`, or a service of
    another protocol on an ACP service's engine (:class:`acp_adapters.a2a.A2AService`)."""

    @property
    def engine(self) -> RunEngine:
        """The engine the service's runs live in."""

    async def handle(self, request: Request) -> Response | StreamResponse:
        """Answer one request."""

    async def aclose(self) -> None:
        """Stop what the service runs."""


class SyncBridge:
    """Serves an :class:`~acp_adapters.core.service.ACPService` (or any :class:`BridgedService`) to
    synchronous code, from any thread.

    The service runs on the process's event loop (see the module docstring); :meth:`handle` blocks
    the calling thread until the answer is ready (for a stream: until its headers are).
    """

    def __init__(self, service: BridgedService) -> None:
        self.service = service
        self._started_in: int | None = None
        self.made = next(_MADE)
        _LOOP.bridges.add(self)

    def handle(self, request: Request) -> Response | SyncStreamResponse:
        """Answer ``request``; a stream comes back as a :class:`SyncStreamResponse` to iterate."""
        loop = _LOOP.current()
        self._started_in = loop.pid
        return loop.call(self._answer, request)

    async def _answer(self, request: Request) -> Response | SyncStreamResponse:
        # On the loop. A stream's pump starts here, and its first chunk comes back with the headers:
        # one hand-off between the threads, not three (the answer, the pump's start, the first read).
        response = await self.service.handle(request)
        if isinstance(response, StreamResponse):
            body = await SyncStreamBody.start(response.body)
            return SyncStreamResponse(status=response.status, headers=response.headers, body=body)
        return response

    def warm_up(self) -> None:
        """Start now what the first request would: the process's event loop, the service's engine
        and its store's connections, and the request path (a ``GET /ping``).

        For a worker process that has just started (see :func:`acp_adapters.workers.warm_up`): in
        the process that serves, after any fork.
        """
        loop = _LOOP.current()
        self._started_in = loop.pid
        loop.call(_warm_up, self.service)

    async def ahandle(self, request: Request) -> Response | StreamResponse:
        """Answer ``request`` from any event loop (asyncio or trio, any thread) on the process's loop.

        For an async adapter whose loop must not host runs (see :func:`loop_outlives_request`): the
        request waits in a worker thread, and a stream comes back as an async iterator.
        """
        response = await anyio.to_thread.run_sync(self.handle, request)
        if isinstance(response, SyncStreamResponse):
            return StreamResponse(response.status, response.headers, _chunks_of(response.body))
        return response

    def close(self) -> None:
        """Close the service (its runs stop). The process's loop keeps running for other bridges."""
        portal = _LOOP.running_portal()
        if portal is not None:
            self.close_on(portal)

    def close_on(self, portal: BlockingPortal) -> None:
        """Close the service on ``portal`` if it was started there (in this process)."""
        if self._started_in != os.getpid():
            return
        self._started_in = None
        try:
            portal.start_task_soon(self.service.aclose).result(CLOSE_TIMEOUT)
        except Exception:
            logger.exception("closing the ACP service failed")


@dataclass
class SyncStreamResponse:
    """A streamed answer for a sync server: write ``status`` and ``headers``, then iterate ``body``
    and close it when done or when the client goes away."""

    status: int
    headers: Headers
    body: SyncStreamBody


class SyncStreamBody(Iterator[bytes]):
    """The chunks of an event stream, read from the event loop by a blocking iterator.

    Made on the loop by :meth:`start`, with the stream's first chunk. ``close()`` (a WSGI server
    calls it when the client goes away or the stream ends) stops the pump task and closes the core's
    stream before it returns: the subscription has ended, the reading thread is free, and the run
    goes on.
    """

    def __init__(
        self,
        portal: BlockingPortal,
        receive: MemoryObjectReceiveStream[bytes],
        pump: concurrent.futures.Future[None],
    ) -> None:
        self._portal = portal
        current = _LOOP.running()
        # Reads go the bridge's fast way when the portal is the process loop's (always, in practice).
        self._loop = current if current is not None and current.portal is portal else None
        self._receive = receive
        self._pump = pump
        self._first = b""
        self._first_written = threading.Event()
        self._scope: anyio.CancelScope | None = None
        self._stopping = False
        self._closed = False

    @classmethod
    async def start(cls, source: AsyncIterator[bytes]) -> SyncStreamBody:
        """On the process's loop: take the first chunk of ``source``, then start the pump task.

        The first chunk is taken in the calling task, before the loop runs anything else: a new run's
        first event is in its log already, so it leaves with the headers, before the agent's first
        turn (a WSGI server writes the headers with the first chunk anyway). A stream whose first
        event is slower (a resumed run that another worker executes) waits for it, or for the
        heartbeat, as its first read would. ``source`` is then stepped by the pump: one task after the
        other, never two at once.
        """
        current = _LOOP.running()
        if current is None or current.loop is not asyncio.get_running_loop():
            raise RuntimeError("SyncStreamBody.start runs on the process's ACP event loop")
        send, receive = anyio.create_memory_object_stream[bytes](STREAM_BUFFER)
        body = cls(current.portal, receive, concurrent.futures.Future())
        try:
            body._first = await source.__anext__()
        except BaseException as exc:
            send.close()
            body._pump.set_result(None)
            with anyio.CancelScope(shield=True):
                await _close_source(source)
            if not isinstance(exc, StopAsyncIteration):
                if not isinstance(exc, Exception):
                    raise
                logger.exception("an event stream failed")
            return body
        task = current.loop.create_task(body._run_pump(source, send))
        _link(task, body._pump)
        return body

    def __iter__(self) -> SyncStreamBody:
        return self

    def __next__(self) -> bytes:
        if self._first:
            first, self._first = self._first, b""
            return first
        self._first_written.set()
        if self._closed:
            raise StopIteration
        try:
            if self._loop is not None:
                return self._loop.call(_receive_batch, self._receive)
            return self._portal.call(_receive_batch, self._receive)
        except (anyio.EndOfStream, anyio.ClosedResourceError, RuntimeError):
            # RuntimeError: the loop has stopped (the process is exiting).
            self.close()
            raise StopIteration from None

    def close(self) -> None:
        """End the subscription and wait (briefly) for the pump to finish. Safe to call more than once."""
        self._first_written.set()
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(RuntimeError):
            self._portal.call(self._stop_pump)
        concurrent.futures.wait([self._pump], timeout=CLOSE_TIMEOUT)

    def let_reader_write(self) -> None:
        """On the loop, once the reader has its first chunk: give it the interpreter until it has
        written the chunk (its next read), for at most :data:`FIRST_WRITE_WAIT`.

        A thread woken while the loop runs Python (a busy agent) waits for the GIL for up to
        ``sys.getswitchinterval()`` (5 ms) before each step, and the server's writes of the headers
        and of the chunk are two such steps: the first event would reach the client a switch interval
        or two late. Waiting here, the loop thread holds nothing.
        """
        if self._first:
            self._first_written.wait(FIRST_WRITE_WAIT)

    def __del__(self) -> None:
        # A WSGI server must call close(); if one does not, at least stop the pump. Cancelling the
        # future is thread-safe and never blocks (this may run on the loop's own thread).
        if not getattr(self, "_closed", True):
            self._pump.cancel()

    def _stop_pump(self) -> None:
        # On the loop. The pump may not have started yet: it checks _stopping when it does.
        self._stopping = True
        if self._scope is not None:
            self._scope.cancel()
        self._receive.close()

    async def _run_pump(self, source: AsyncIterator[bytes], send: MemoryObjectSendStream[bytes]) -> None:
        # The first statement is the try: a pump stopped before it ran still closes the source.
        try:
            with anyio.CancelScope() as self._scope:
                if self._stopping:
                    self._scope.cancel()
                async with send:
                    async for chunk in source:
                        await send.send(chunk)
        except anyio.BrokenResourceError:
            pass  # the reader closed its end
        except Exception:
            logger.exception("an event stream failed")
        finally:
            with anyio.CancelScope(shield=True):
                await _close_source(source)


async def _close_source(source: AsyncIterator[bytes]) -> None:
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        await aclose()


async def _warm_up(service: BridgedService) -> None:
    await service.engine.ensure_started()
    await service.handle(Request(method="GET", path="/ping", base_url="http://localhost"))


async def _chunks_of(body: SyncStreamBody) -> AsyncIterator[bytes]:
    """A bridge stream read from another event loop; closing it closes the stream (never the run)."""
    try:
        while True:
            # Abandoned if the reader is cancelled: closing the body below ends the thread's wait.
            chunk = await anyio.to_thread.run_sync(next, body, None, abandon_on_cancel=True)
            if chunk is None:
                return
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(body.close)


def loop_outlives_request(scope: Mapping[str, Any] | None) -> bool:
    """Whether the running event loop may host runs: it goes on after the request that reached it.

    True for an asyncio loop in the main thread (where servers run theirs: uvicorn, hypercorn, daphne,
    an async test), unless ``scope`` (the request's ASGI scope) comes from a test client: Starlette's
    ``TestClient`` (client ``testclient``) runs each request on a loop of its own unless used with
    ``with``, and Django's ``AsyncClient`` (client port 0) on the loop of one test. A loop in another
    thread, or a trio loop, is not trusted either. Where this is False the request goes through
    :meth:`SyncBridge.ahandle`, which always works, at the cost of a thread hop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # not asyncio (trio): the engine needs an asyncio loop
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    client: Any = (scope or {}).get("client")
    if client is None or len(client) != 2:
        return True
    return not (client[0] == "testclient" or str(client[1]) == "0")


async def _receive_batch(receive: MemoryObjectReceiveStream[bytes]) -> bytes:
    """Wait for one chunk, then take those already waiting (one thread hop for many events)."""
    first = await receive.receive()
    return first + _take_ready(receive, BATCH_BYTES - len(first)) if len(first) < BATCH_BYTES else first


def _take_ready(receive: MemoryObjectReceiveStream[bytes], most: int = BATCH_BYTES) -> bytes:
    """The chunks waiting in ``receive``, joined, up to about ``most`` bytes (``b""``: none)."""
    chunks: list[bytes] = []
    size = 0
    while size < most:
        try:
            chunk = receive.receive_nowait()
        except (anyio.WouldBlock, anyio.EndOfStream):
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _link(task: asyncio.Task[None], future: concurrent.futures.Future[None]) -> None:
    """Make ``future`` (waited for and cancelled from other threads) follow ``task`` on its loop."""

    def finished(_: asyncio.Task[None]) -> None:
        with contextlib.suppress(concurrent.futures.InvalidStateError):  # cancelled meanwhile
            future.set_result(None)

    def cancel_task(done: concurrent.futures.Future[None]) -> None:
        if done.cancelled():
            with contextlib.suppress(RuntimeError):  # the loop is closed: the process is exiting
                task.get_loop().call_soon_threadsafe(task.cancel)

    task.add_done_callback(finished)
    future.add_done_callback(cancel_task)
