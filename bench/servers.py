"""Starting, probing, measuring and always stopping the servers under test.

Each server runs in a session of its own (its process group holds the workers), bound to a free
127.0.0.1 port, optionally pinned to a set of cores. :class:`ServerPool` stops every server it
started, whatever happens (exceptions, Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from bench.deployments import Deployment
from bench.http_client import build_request

__all__ = ["Server", "ServerPool", "StartError", "free_port", "service_missing", "unavailable_reason"]

REPO = Path(__file__).resolve().parent.parent
_READY_TIMEOUT = 60.0
_STOP_TIMEOUT = 10.0
_PAGE = os.sysconf("SC_PAGE_SIZE")


class StartError(Exception):
    """A server did not come up; the message holds the end of its log."""


def free_port() -> int:
    """A port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _place(deployment: Deployment, source: Path) -> tuple[Path, dict[str, str]]:
    """The working directory and environment of ``deployment``'s processes.

    Adapters run from ``source`` (the repository, or an export of one commit of it); the floors and
    the acp-sdk app are the harness's own and always run from this repository.
    """
    home = source if deployment.kind == "adapter" else REPO
    env = {**os.environ, **deployment.env, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(
        dict.fromkeys(p for p in (str(home), str(REPO), env.get("PYTHONPATH")) if p)
    )
    return (REPO / "bench" if deployment.kind == "acp-sdk" else home), env


def unavailable_reason(
    deployment: Deployment, python: str = sys.executable, source: Path = REPO
) -> str | None:
    """Why ``deployment`` cannot run yet (its app or a required module does not import), or ``None``."""
    module, _, attribute = deployment.app.partition(":")
    probe = (
        "import importlib, sys\n"
        f"for name in {list(deployment.requires)!r}: importlib.import_module(name)\n"
        f"app = getattr(importlib.import_module({module!r}), {attribute!r})\n"
    )
    cwd, env = _place(deployment, source)
    try:
        done = subprocess.run(
            [python, "-c", probe], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        return f"`{deployment.app}` takes over 120 s to import"
    if done.returncode == 0:
        return None
    last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
    return f"`{deployment.app}` does not import yet ({last[:160]})"


def service_missing(name: str) -> str | None:
    """Why the local service ``name`` (``redis``, ``postgres``) cannot be used, or ``None``."""
    port = {"redis": 6379, "postgres": 5432}[name]
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError as exc:
        return f"{name} is not reachable on 127.0.0.1:{port} ({exc})"
    return None


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, body = out + body[:size], body[size + 2 :]
    return out


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            kids += [int(p) for p in (task / "children").read_text().split()]
    return kids


def _rss(pid: int) -> int:
    with contextlib.suppress(OSError):
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    return 0


def _peak_rss(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class Server:
    """One running deployment."""

    def __init__(
        self, deployment: Deployment, python: str, cpus: set[int] | None, log_dir: Path, source: Path = REPO
    ) -> None:
        self.deployment = deployment
        self.port = free_port()
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{deployment.name}-{self.port}.log"
        self._log = self.log_path.open("wb")
        cwd, env = _place(deployment, source)
        self._setup = contextlib.ExitStack()
        if deployment.setup:
            from bench.setups import SETUPS

            try:
                env.update(self._setup.enter_context(SETUPS[deployment.setup](cwd, env)))
            except Exception as exc:
                self._log.close()
                raise StartError(f"set-up {deployment.setup} failed: {exc!r}"[:500]) from None

        def pin() -> None:  # runs in the child before exec; its workers inherit the affinity
            if cpus:
                os.sched_setaffinity(0, cpus)

        self.process = subprocess.Popen(
            deployment.command(self.port, python),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=pin,
        )

    def wait_ready(self, timeout: float = _READY_TIMEOUT) -> None:
        """Wait until ``GET {mount}/agents`` lists ``echo`` and ``chunks`` (``StartError`` otherwise);
        for the a2a-sdk server, which serves no ACP, until ``chunks``'s agent card answers."""
        deadline = time.monotonic() + timeout
        if self.deployment.kind == "a2a-sdk":
            path = f"{self.deployment.a2a_mount}/chunks/.well-known/agent-card.json"
        else:
            path = f"{self.deployment.mount}/agents"
        request = build_request("GET", "127.0.0.1", self.port, path)
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StartError(f"exited with {self.process.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                    sock.sendall(request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))
                    answer = b""
                    while chunk := sock.recv(65536):
                        answer += chunk
                head, _, body = answer.partition(b"\r\n\r\n")
                if b"transfer-encoding: chunked" in head.lower():
                    body = _dechunk(body)
                data = json.loads(body or b"{}")
                if self.deployment.kind == "a2a-sdk":
                    data = {"agents": [{"name": "echo"}, data]}  # its card: the app serves both agents
                names = {a.get("name") for a in data.get("agents", [])}
                if head.startswith(b"HTTP/1.1 200") and {"echo", "chunks"} <= names:
                    return
                last = (
                    head.split(b"\r\n", 1)[0].decode(errors="replace") + f", agents {sorted(map(str, names))}"
                )
            except (OSError, ValueError, AttributeError) as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise StartError(f"not ready after {timeout:.0f} s ({last}): {self.log_tail()}")

    def rss(self) -> int:
        """Resident memory of the processes serving requests (the workers, or the server itself), bytes."""
        workers = _children(self.process.pid)
        return sum(_rss(pid) for pid in workers) if workers else _rss(self.process.pid)

    def peak_rss(self) -> int:
        """The highest resident memory the serving processes reached so far (``VmHWM``), bytes."""
        workers = _children(self.process.pid) or [self.process.pid]
        return sum(_peak_rss(pid) for pid in workers)

    def log_tail(self, lines: int = 8) -> str:
        """The last lines the server wrote."""
        self._log.flush()
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(empty log)"

    def stop(self) -> None:
        """Stop the server and its workers: SIGTERM to its process group, then SIGKILL."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(_STOP_TIMEOUT)
        with contextlib.suppress(ProcessLookupError):  # workers left behind by a dead master
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(_STOP_TIMEOUT)
        self._log.close()
        self._setup.close()


class ServerPool:
    """Starts servers and stops all of them on exit, on error and on SIGTERM."""

    def __init__(self, log_dir: Path, cpus: set[int] | None, source: Path = REPO) -> None:
        self.log_dir = log_dir
        self.cpus = cpus
        self.source = source
        self._servers: list[Server] = []

    def start(self, deployment: Deployment, python: str) -> Server:
        """Start ``deployment`` and wait until it answers (``StartError`` otherwise; it is stopped then)."""
        cpus = self.cpus if deployment.workers == 1 else None  # several workers get every core
        server = Server(deployment, python, cpus, self.log_dir, self.source)
        self._servers.append(server)
        try:
            server.wait_ready()
        except BaseException:
            self.stop(server)
            raise
        return server

    def stop(self, server: Server) -> None:
        """Stop one server now."""
        server.stop()
        if server in self._servers:
            self._servers.remove(server)

    def __enter__(self) -> ServerPool:
        self._previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        for server in list(self._servers):
            self.stop(server)
        signal.signal(signal.SIGTERM, self._previous)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
