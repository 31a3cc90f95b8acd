"""How the one contract suite reaches a deployment of acp-adapters, whatever the framework.

The mechanism
=============

Every module ``tests/deployments/<name>.py`` (other than this one) defines a module-level
``DEPLOYMENTS: list[Deployment]``. :mod:`tests.deployments` imports each module lazily and gathers
them; ``tests/conftest.py`` parametrises the session-scoped ``target`` fixture over all of them (test
ids are the deployment names, the deployment's marks are applied, so ``-m flask`` or
``-k starlette-uvicorn`` select one). A deployment is started once per session: pytest groups the tests
by deployment, starts it before the first test that needs it, and stops it once the group is done.

A :class:`Deployment` is

* ``name``: the test id (``starlette-uvicorn``, ``flask-gunicorn-redis``...), unique;
* ``start``: a zero-argument factory of a context manager that starts the deployment, yields a
  :class:`Target` and stops everything on exit (no leaked process, thread or port). Calling it again
  starts a second, independent instance (the distributed-session tests do that);
* ``marks``: pytest marks for its tests (``pytest.mark.starlette``, ``flask``, ``django``, ``redis``,
  ``postgres``, ``slow`` for real servers);
* ``real_server``: whether the ACP API answers on a real TCP socket at ``Target.base_url`` (the
  official-client tests in ``tests/sdk`` run only against those);
* ``official_clients``: ``False`` keeps ``tests/sdk`` off a real server that another deployment of the
  same kind covers already (the suite's time).

A :class:`Target` is what a test sees: ``base_url`` (absolute URL of the ACP mount, no trailing slash:
``http://127.0.0.1:PORT/acp`` or ``http://testserver/acp``), ``client`` (a :class:`ContractClient`, whose
``request(method, path, ...)`` takes a path relative to the mount, ``"/runs"``, and returns an
:class:`HttpResult` with the whole body read), and ``server_log`` (the file where a real server's output
goes: it is attached to the report of any failing test).

Writing a deployment module
---------------------------

A real server::

    def _uvicorn() -> AbstractContextManager[Target]:
        return serve(["{python}", "-m", "uvicorn", "example_starlette.app:app", "--port", "{port}"])

    DEPLOYMENTS = [Deployment("starlette-uvicorn", _uvicorn, (pytest.mark.starlette, pytest.mark.slow), True)]

:func:`serve` picks a free 127.0.0.1 port, fills ``{port}``, ``{host}`` and ``{python}`` into the
command, starts it from the repository root with ``env`` added to the environment, waits until
``GET {mount}/ping`` answers 200, yields the target, then terminates the process (and kills its process
group if it lingers). Every server it starts trusts one more loopback origin, its *peer*
(``ACP_TRUSTED_ORIGINS=http://127.0.0.1:<peer port>``, the port picked with the server's own and kept
in ``Target.extra["peer_port"]``): the distributed-session tests start a second server on that port,
trusting the first one's origin (:func:`origin`), so that each may load the other's session history
while no other loopback origin is trusted. An in-process deployment wraps its framework's test client in a
:class:`ContractClient` (for an ``httpx.Client``, such as Starlette's ``TestClient``, use
:class:`HttpxContractClient`).

Import the framework at the top of the module: a module whose framework is not installed is skipped
(with the missing module named), any other import error fails the collection. A deployment that needs
Redis or PostgreSQL calls :func:`require_service` in ``start`` so that it skips when the service is absent
and ``ACP_REQUIRE_SERVICES`` is unset, and fails when it is set.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import pytest

if TYPE_CHECKING:  # Starlette's TestClient is an httpx2.Client, not an httpx.Client
    from starlette.testclient import TestClient

__all__ = [
    "REPO_ROOT",
    "TLS",
    "ContractClient",
    "Deployment",
    "HttpResult",
    "HttpxContractClient",
    "SSEEvent",
    "ServerStartError",
    "StreamedAnswer",
    "Target",
    "free_port",
    "merged_headers",
    "origin",
    "parse_sse",
    "require_service",
    "serve",
    "strict_json",
]

#: The root of the repository (where ``acp_adapters`` and the ``example_*`` packages live).
REPO_ROOT = Path(__file__).resolve().parents[2]

#: How long one request may take before the test fails (a hang must fail, not block the suite).
REQUEST_TIMEOUT = 60.0

#: The TLS context to give every httpx client the tests make (``verify=TLS``): httpx builds a new one
#: for each client otherwise, loading the system's CA bundle each time (35 ms here; A2A's tests spent a
#: fifth of their time on it). The servers the tests reach speak plain HTTP on 127.0.0.1: it is built,
#: never used.
TLS = ssl.create_default_context()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259); JavaScript's JSON.parse rejects it")


def strict_json(text: str | bytes) -> Any:
    """Parse standard JSON only: ``NaN`` and ``Infinity``, which Python accepts, are errors."""
    return json.loads(text, parse_constant=_reject_constant)


@dataclass(frozen=True)
class SSEEvent:
    """One server-sent event: its ``id:`` (or ``None``), ``event:`` (or ``None``) and parsed JSON ``data``."""

    id: str | None
    data: Any
    event: str | None = None


def parse_sse(body: bytes) -> tuple[list[SSEEvent], list[str]]:
    """Parse a ``text/event-stream`` body into its events and its comment lines (without the ``:``).

    Follows the HTML living standard's parsing rules (``\\r\\n``, ``\\r`` or ``\\n`` line ends, one optional
    space after the colon, multi-line ``data`` joined with ``\\n``). Raises ``ValueError`` on an event whose
    data is not JSON: every ACP event is JSON.
    """
    events: list[SSEEvent] = []
    comments: list[str] = []
    text = body.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    event_id: str | None = None
    event_type: str | None = None
    data: list[str] = []
    for line in text.split("\n"):
        if line == "":
            if data:
                joined = "\n".join(data)
                try:
                    parsed = strict_json(joined)
                except ValueError as exc:
                    raise ValueError(f"event data is not JSON: {joined!r}") from exc
                events.append(SSEEvent(id=event_id, data=parsed, event=event_type))
            event_id, event_type, data = None, None, []
            continue
        if line.startswith(":"):
            comments.append(line[1:].lstrip(" "))
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "id":
            event_id = value
        elif name == "event":
            event_type = value
    return events, comments


@dataclass
class HttpResult:
    """A whole HTTP answer: status, headers (lower-case names; repeated ones joined by ``", "``), body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as standard JSON (``NaN`` or ``Infinity`` fail)."""
        return strict_json(self.body)

    def sse_events(self) -> list[SSEEvent]:
        """The body parsed as an event stream: its events, in order."""
        return parse_sse(self.body)[0]

    def sse_comments(self) -> list[str]:
        """The comment lines (heartbeats) of an event-stream body."""
        return parse_sse(self.body)[1]

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 2000 else self.body[:2000] + b"..."
        return f"HttpResult(status={self.status}, headers={self.headers}, body={body!r})"


@dataclass
class StreamedAnswer:
    """An answer being read as it comes: status, headers (as in :class:`HttpResult`) and the body's
    chunks, which wait for the server's next write."""

    status: int
    headers: dict[str, str]
    chunks: Iterator[bytes]


def merged_headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers with lower-case names, repeated ones joined by ``", "``."""
    merged: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged


class ContractClient(Protocol):
    """A synchronous HTTP client bound to a deployment's ACP mount. Safe to call from several threads."""

    #: Whether :meth:`stream` hands chunks over as the server writes them; ``False`` where the test
    #: client reads the whole answer before returning it (Starlette's ``TestClient``, Django's
    #: ``AsyncClient`` here): a test of what a live stream shows asserts it only where this is true.
    live_streams: bool

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResult:
        """Send ``method`` to the mount's ``path`` (``"/runs?x=1"``) and read the whole answer."""
        ...

    def stream(
        self, method: str, path: str, *, json: Any = None, headers: Mapping[str, str] | None = None
    ) -> AbstractContextManager[StreamedAnswer]:
        """Send ``method`` (with ``json`` as the body, if given) to the mount's ``path`` and read the
        answer as it comes; leaving the context closes it, as a client that goes away does."""
        ...


class HttpxContractClient:
    """A :class:`ContractClient` over an ``httpx.Client`` (sockets) or Starlette's ``TestClient``."""

    def __init__(
        self,
        client: httpx.Client | TestClient | PerThreadClient,
        base_url: str,
        *,
        live_streams: bool = False,
    ) -> None:
        """``live_streams``: whether ``client`` reads a stream as it comes (sockets do, ``TestClient``
        does not)."""
        self.client = client
        self.base_url = base_url
        self.live_streams = live_streams

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResult:
        response = self.client.request(
            method, self.base_url + path, json=json, content=content, headers=dict(headers or {})
        )
        merged = merged_headers(response.headers.multi_items())
        return HttpResult(status=response.status_code, headers=merged, body=response.read())

    @contextlib.contextmanager
    def stream(
        self, method: str, path: str, *, json: Any = None, headers: Mapping[str, str] | None = None
    ) -> Iterator[StreamedAnswer]:
        url = self.base_url + path
        with self.client.stream(method, url, json=json, headers=dict(headers or {})) as response:
            merged = merged_headers(response.headers.multi_items())
            yield StreamedAnswer(response.status_code, merged, response.iter_raw())


def gunicorn_command(app: str, *, workers: int = 1) -> list[str]:
    """The gunicorn command line every WSGI deployment uses: gthread workers of 32 threads."""
    return [
        *("{python}", "-m", "gunicorn", "-w", str(workers), "-k", "gthread", "--threads", "32"),
        *("--graceful-timeout", "3", "-b", "{host}:{port}", app),
    ]


class PerThreadClient:
    """An ``httpx.Client`` per calling thread, each opening a new connection per request.

    Tests call one target from many threads at once; one shared sync pool across threads has been
    seen to read from a socket another thread had just closed (EBADF).
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._client().request(method, url, **kwargs)

    def stream(self, method: str, url: str, **kwargs: Any) -> AbstractContextManager[httpx.Response]:
        return self._client().stream(method, url, **kwargs)

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(
                verify=TLS,
                timeout=REQUEST_TIMEOUT,
                limits=httpx.Limits(max_connections=10, max_keepalive_connections=0),
            )
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()


@dataclass
class Target:
    """A started deployment, as tests see it."""

    base_url: str
    client: ContractClient
    #: The deployment's name (handy in messages).
    name: str = ""
    #: Where a real server's stdout/stderr goes; shown in the report of a failing test.
    server_log: Path | None = None
    #: Anything else a deployment wants to expose to its own tests.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Deployment:
    """One way of serving the demo agents; see the module docstring."""

    name: str
    start: Callable[[], AbstractContextManager[Target]]
    marks: tuple[Any, ...] = ()
    real_server: bool = False
    #: Whether ``tests/sdk`` (the official clients) runs against it too (a real server only).
    official_clients: bool = True


class ServerStartError(RuntimeError):
    """A server process did not come up; the message carries the end of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def origin(target: Target) -> str:
    """The origin (``scheme://host:port``) of a target's base URL: what a peer puts in its
    ``ACP_TRUSTED_ORIGINS``."""
    scheme, _, rest = target.base_url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def log_tail(path: Path, size: int = 8000) -> str:
    """The last ``size`` characters of a log file (empty if it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-size:]


def _stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Terminate ``process`` (SIGTERM), then kill it and its process group if it does not exit in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(grace)
    # Workers it forked (gunicorn) share its process group, which was made for it alone.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the test process dies, even by SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait_ready(process: subprocess.Popen[bytes], ping_url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(
                f"server exited with code {process.returncode} before answering {ping_url}:\n{log_tail(log)}"
            )
        try:
            response = httpx.get(ping_url, timeout=2.0, verify=TLS)
            if response.status_code == 200:
                return
            last_error = f"status {response.status_code}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            last_error = repr(exc)
        time.sleep(0.1)
    message = f"{ping_url} did not answer 200 within {timeout}s ({last_error})"
    raise ServerStartError(f"{message}:\n{log_tail(log)}")


@contextlib.contextmanager
def serve(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    mount: str = "/acp",
    name: str = "",
    cwd: Path = REPO_ROOT,
    host: str = "127.0.0.1",
    startup_timeout: float = 30.0,
    attempts: int = 3,
    port: int | None = None,
) -> Iterator[Target]:
    """Run a server process and yield a :class:`Target` for its ACP mount; stop it on exit.

    ``command`` may contain ``{port}``, ``{host}`` and ``{python}`` (this interpreter). The process runs in
    ``cwd`` (the repository root) with ``env`` added to the environment and the repository root on
    ``PYTHONPATH``; its stdout and stderr go to a temporary log file (``Target.server_log``), kept after the
    session only when the server failed to start. A start that fails because the process exits early (the
    port was taken in between) is retried on another port, unless ``port`` fixes it.

    Unless ``env`` sets ``ACP_TRUSTED_ORIGINS``, the server trusts the origin of its peer port
    (``Target.extra["peer_port"]``, see the module docstring).
    """
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(p for p in (str(cwd), environment.get("PYTHONPATH", "")) if p)
    peer_port: int | None = None
    if "ACP_TRUSTED_ORIGINS" not in (env or {}):
        peer_port = free_port(host)
        environment["ACP_TRUSTED_ORIGINS"] = f"http://{host}:{peer_port}"
    tries = 1 if port is not None else attempts
    for attempt in range(1, tries + 1):
        chosen = port if port is not None else free_port(host)
        argv = [part.format(port=chosen, host=host, python=sys.executable) for part in command]
        fd, log_name = tempfile.mkstemp(prefix=f"acp-{name or 'server'}-", suffix=".log")
        log = Path(log_name)
        with os.fdopen(fd, "wb") as log_file:
            log_file.write(f"$ {' '.join(argv)}\n".encode())
            log_file.flush()
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                env=environment,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        base_url = f"http://{host}:{chosen}{mount.rstrip('/')}"
        try:
            _wait_ready(process, base_url + "/ping", log, startup_timeout)
        except ServerStartError:
            _stop(process)
            if attempt == tries or process.returncode is None:
                raise
            continue
        client = PerThreadClient()
        try:
            contract_client = HttpxContractClient(client, base_url, live_streams=True)
            extra: dict[str, Any] = {} if peer_port is None else {"peer_port": peer_port}
            yield Target(base_url=base_url, client=contract_client, name=name, server_log=log, extra=extra)
        finally:
            client.close()
            _stop(process)
        log.unlink(missing_ok=True)
        return


def require_service(host: str, port: int, what: str) -> None:
    """Skip the calling test unless ``host:port`` answers (fail under ``ACP_REQUIRE_SERVICES``)."""
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return
    except OSError as exc:
        reason = f"{what} is not reachable at {host}:{port} ({exc})"
    if os.environ.get("ACP_REQUIRE_SERVICES"):
        pytest.fail(f"{reason}, and ACP_REQUIRE_SERVICES is set", pytrace=False)
    pytest.skip(f"{reason}; set ACP_REQUIRE_SERVICES=1 to make this a failure")
