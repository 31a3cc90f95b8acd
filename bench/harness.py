"""The run of a benchmark: start the deployments, run the scenarios interleaved, stop everything.

Scenarios (ids as ``--scenarios`` takes them):

* ``sync-1``, ``sync-16``: sync ``echo`` runs from 1 and 16 keep-alive clients;
* ``async``: async ``echo`` runs created then polled until completed, 16 clients;
* ``stream``: one stream of ``chunks`` per N (1,000, 5,000, 20,000 by default);
* ``a2a-send``, ``a2a-stream``: the same over A2A (issue 16), on the deployments that serve it (the
  adapters' ``/a2a`` mounts and the a2a-sdk server): blocking ``SendMessage`` of ``echo`` from 16
  clients, and one ``SendStreamingMessage`` of ``chunks`` per N (JSON-RPC, A2A 1.0);
* ``memory``: on a fresh server, RSS before and after 10,000 sync runs, and the throughput over
  the first and the last 500 of them; three times, each on a fresh server (a window of 500 runs
  lasts a fraction of a second on a fast server, so one pass says more about the machine than
  about the server).
* ``memory-max``: the same at the limits, one fresh server per request shape: sync runs whose
  request is as large as the server takes (a 4 MiB body in one text part; 4 MiB of one-character
  parts, 1,000 per message) or whose output is the most the demo agents make (``chunks`` of 100,000
  parts); RSS before, after and at its peak, per run. Runs a limit ends or refuses are counted apart.

Every measurement of a scenario is taken on each deployment in turn (A B C A B C ...), so that a
slow drift of the machine spreads over all of them; each scenario starts on freshly started
servers. The load generator is a separate process (:mod:`bench.loadgen`) pinned to the last core;
the servers are pinned to the first. Each measurement waits for a quiet machine and is taken again
when other programs took much of it meanwhile (:mod:`bench.contention`).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import acpsdk_venv, contention, source
from bench.deployments import A2A_SCENARIOS, DEPLOYMENTS, Deployment, by_name
from bench.servers import REPO, Server, ServerPool, StartError, service_missing, unavailable_reason

__all__ = ["SCENARIOS", "BenchRun", "Options", "Results", "run"]

SCENARIOS = ("sync-1", "sync-16", "async", "stream", "memory", "memory-max", *A2A_SCENARIOS)
#: The request shapes of ``memory-max`` (see :func:`bench.loadgen.limits_request`).
LIMIT_SHAPES = ("max-body", "max-parts", "max-log")
_CONCURRENCY = {"sync-1": 1, "sync-16": 16, "async": 16, "a2a-send": 16}
#: The load generator's job kind of each scenario of :meth:`BenchRun.load` and :meth:`BenchRun.stream`.
_JOB_KIND = {"sync-1": "sync", "sync-16": "sync", "async": "async", "a2a-send": "a2a-send",
             "stream": "stream", "a2a-stream": "a2a-stream"}  # fmt: skip


@dataclass
class Options:
    """What to run and how long (the CLI's flags; ``quick()`` is the smoke run)."""

    deployments: tuple[str, ...] = ()
    scenarios: tuple[str, ...] = SCENARIOS
    reps: int = 5
    duration: float = 3.0
    stream_ns: tuple[int, ...] = (1_000, 5_000, 20_000)
    stream_timeout: float = 60.0
    #: Worker processes of the multi-worker deployments (the shared stores') and of their floors;
    #: ``None``: each deployment's own (4). The memory-store deployments keep their one worker.
    workers: int | None = None
    memory_runs: int = 10_000
    memory_window: int = 500
    memory_timeout: float = 300.0
    memory_reps: int = 3
    #: Runs of each shape of ``memory-max``, and the body size they fill (the default max_body_size).
    limits_runs: int = 100
    limits_body_size: int = 4 * 1024 * 1024
    request_timeout: float = 30.0
    pin: bool = True
    ref: str | None = None  # a git revision to measure instead of the working tree
    #: Before each measurement, wait up to quiet_wait s for the machine to be under quiet_threshold busy;
    #: retry a measurement (up to retries times) during which other programs took over max_foreign of it.
    quiet_threshold: float = 0.10
    quiet_wait: float = 30.0
    max_foreign: float = 0.10
    retries: int = 2
    log_dir: Path = REPO / "bench" / "results" / "logs"

    @classmethod
    def quick(cls, **overrides: Any) -> Options:
        """A smoke run: one repetition of everything, small and short."""
        values: dict[str, Any] = {
            "reps": 1,
            "duration": 1.0,
            "stream_ns": (100, 500, 2_000),
            "stream_timeout": 15.0,
            "memory_runs": 1_000,
            "memory_window": 100,
            "memory_timeout": 30.0,
            "memory_reps": 1,
            "limits_runs": 20,
            "quiet_wait": 5.0,
            "retries": 0,
        }
        return cls(**{**values, **overrides})


@dataclass
class Results:
    """Everything measured, as the report and the JSON file take it."""

    options: dict[str, Any]
    machine: dict[str, Any]
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    measurements: list[dict[str, Any]] = field(default_factory=list)

    def note(self, deployment: Deployment, status: str, note: str = "") -> None:
        self.deployments[deployment.name] = {
            "label": deployment.label,
            "kind": deployment.kind,
            "server": deployment.server_label,
            "app": deployment.app,
            "floor": deployment.floor,
            "status": status,
            "note": note,
        }

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=1, default=str)


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _cpus(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """Cores for the servers and for the load generator (``None``: no pinning)."""
    cores = sorted(os.sched_getaffinity(0))
    if not pin or len(cores) < 2:
        return None, None
    return {cores[0]}, {cores[-1]}


def _selection(names: tuple[str, ...], workers: int | None = None) -> list[Deployment]:
    """The deployments asked for (the default ones when none is named), floors they refer to last;
    ``workers`` replaces the worker count of the multi-worker ones."""
    chosen = (
        [by_name(n) for n in names] if names else [d for d in DEPLOYMENTS if d.default and d.kind != "floor"]
    )
    for deployment in list(chosen):
        if deployment.floor and by_name(deployment.floor) not in chosen:
            chosen.append(by_name(deployment.floor))
    if workers is None:
        return chosen
    return [replace(d, workers=workers) if d.workers > 1 else d for d in chosen]


def _machine() -> dict[str, Any]:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "-"

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {
            d: version(d)
            for d in ("uvicorn", "gunicorn", "starlette", "flask", "django", "pydantic", "uvloop")
        },
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def _loadgen(job: dict[str, Any], budget: float) -> dict[str, Any]:
    """Run one job in a load generator process of its own; its result."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.loadgen"],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
            timeout=budget,
        )
    except subprocess.TimeoutExpired:
        return {"failures": 1, "errors": [f"load generator overran its {budget:.0f} s budget"], "ok": 0}
    if done.returncode != 0:
        return {"failures": 1, "errors": [f"load generator crashed: {done.stderr.strip()[-300:]}"], "ok": 0}
    result: dict[str, Any] = json.loads(done.stdout)
    return result


class BenchRun:
    """The state of one benchmark: options, cores, results, the servers running."""

    def __init__(self, options: Options, code: Path) -> None:
        self.options = options
        self.code = code
        self.server_cpus, self.client_cpus = _cpus(options.pin)
        self.results = Results(options=_jsonable(options), machine=_machine())
        self.results.machine["pinning"] = (
            f"servers on core {sorted(self.server_cpus)}, load generator on core {sorted(self.client_cpus)}"
            if self.server_cpus and self.client_cpus
            else "none"
        )
        self.results.machine["code"] = source.describe(options.ref)
        self.python: dict[str, str] = {}
        self.servers: list[Server] = []  # every server now running (their CPU time is ours)

    def job(self, server: Server, **fields: Any) -> dict[str, Any]:
        """A load generator job on ``server``: A2A kinds go to its A2A mount, the others to its ACP one."""
        a2a = str(fields.get("kind", "")).startswith("a2a-")
        return {
            "host": "127.0.0.1",
            "port": server.port,
            "mount": server.deployment.a2a_mount if a2a else server.deployment.mount,
            "timeout": self.options.request_timeout,
            "cpus": sorted(self.client_cpus) if self.client_cpus else None,
            **fields,
        }

    def record(self, scenario: str, server: Server, rep: int, result: dict[str, Any], **extra: Any) -> None:
        entry = {"scenario": scenario, "deployment": server.deployment.name, "rep": rep, **extra, **result}
        self.results.measurements.append(entry)
        figure = f"{result.get('rate', 0):,.0f}/s" if "elapsed" in result else ""
        failed = f", {result['failures']} FAILED: {result['errors'][:1]}" if result.get("failures") else ""
        _log(f"{scenario} {extra or ''} rep {rep + 1} {server.deployment.name}: {figure}{failed}")

    # -- set-up ------------------------------------------------------------------------------------

    def available(self, deployments: list[Deployment]) -> list[Deployment]:
        ready = []
        for deployment in deployments:
            reason = next(filter(None, (service_missing(s) for s in deployment.services)), None)
            if reason is None and deployment.kind == "acp-sdk":
                try:
                    self.python[deployment.name] = str(acpsdk_venv.ensure_venv())
                    self.results.machine["acp-sdk venv"] = acpsdk_venv.versions()
                except (OSError, subprocess.SubprocessError) as exc:
                    reason = f"could not make the acp-sdk virtualenv ({exc})"
            python = self.python.setdefault(deployment.name, sys.executable)
            reason = reason or unavailable_reason(deployment, python, self.code)
            if reason:
                _log(f"skipping {deployment.name}: {reason}")
                self.results.note(deployment, "skipped", reason)
            else:
                ready.append(deployment)
        # A floor is only worth running beside something measured against it.
        wanted = {d.floor for d in ready} | {n for n in self.options.deployments}
        return [d for d in ready if d.kind != "floor" or d.name in wanted]

    def start(self, pool: ServerPool, deployment: Deployment) -> Server | None:
        try:
            server = pool.start(deployment, self.python[deployment.name])
        except StartError as exc:
            _log(f"{deployment.name} did not start: {exc}")
            self.results.note(deployment, "failed to start", str(exc)[:300])
            return None
        if self.results.deployments.get(deployment.name, {}).get("status") != "failed to start":
            self.results.note(deployment, "measured")
        self.servers.append(server)
        return server

    def measure(self, job: dict[str, Any], retry: bool = True) -> dict[str, Any]:
        """Run a job at a quiet moment; again if other programs took much of the machine meanwhile."""
        options = self.options
        for attempt in range(1 + (options.retries if retry else 0)):
            contention.wait_for_quiet(options.quiet_threshold, options.quiet_wait)
            meter = contention.Meter([s.process.pid for s in self.servers if s.process.poll() is None])
            meter.start()
            result = self.loadgen(job)
            result.update(foreign_cpu=meter.stop(), attempts=attempt + 1)
            if result["foreign_cpu"] <= options.max_foreign or result.get("timed_out"):
                break
            _log(f"other programs took {result['foreign_cpu']:.0%} of the machine; measuring again")
        return result

    def warm_up(self, server: Server, scenario: str = "") -> None:
        """A few runs and a short stream, so that lazy imports and first-use costs do not count."""
        if scenario in A2A_SCENARIOS:
            self.loadgen(self.job(server, kind="a2a-send", concurrency=4, duration=1.0, max_runs=200))
            self.loadgen(self.job(server, kind="a2a-stream", n=100))
            return
        self.loadgen(self.job(server, kind="sync", concurrency=4, duration=1.0, max_runs=200))
        self.loadgen(self.job(server, kind="stream", n=100))
        if server.deployment.kind == "floor":  # its answers are precomputed: before the clock starts
            for n in self.options.stream_ns:
                self.loadgen(self.job(server, kind="stream", n=n))

    def loadgen(self, job: dict[str, Any]) -> dict[str, Any]:
        budget = float(job.get("duration", 0)) + 2 * self.options.request_timeout + 30.0
        if job["kind"] == "limits":
            budget = float(job["timeout"]) * int(job["max_runs"]) / int(job["concurrency"]) + 30.0
        if job["kind"] in ("stream", "a2a-stream"):
            budget = self.options.stream_timeout + 30.0
        return _loadgen(job, budget)

    # -- scenarios -----------------------------------------------------------------------------------

    def load(self, scenario: str, servers: list[Server]) -> None:
        kind = _JOB_KIND[scenario]
        for rep in range(self.options.reps):
            for server in servers:
                if server.deployment.runs(scenario):
                    job = self.job(
                        server,
                        kind=kind,
                        concurrency=_CONCURRENCY[scenario],
                        duration=self.options.duration,
                        max_runs=1_000_000,
                    )
                    self.record(scenario, server, rep, self.measure(job))

    def stream(self, servers: list[Server], scenario: str = "stream") -> None:
        kind = _JOB_KIND[scenario]
        gave_up: dict[str, int] = {}  # deployment -> the N at which a stream timed out
        for n in self.options.stream_ns:
            for rep in range(self.options.reps):
                for server in servers:
                    name = server.deployment.name
                    if not server.deployment.runs(scenario) or n >= gave_up.get(name, n + 1):
                        continue
                    job = self.job(server, kind=kind, n=n, timeout=self.options.stream_timeout)
                    result = self.measure(job)
                    self.record(scenario, server, rep, result, n=n)
                    if result.get("timed_out"):
                        gave_up[name] = n
        # A deployment that finished fewer than two N has no exponent yet: fit it on smaller N.
        for server in servers:
            limit = gave_up.get(server.deployment.name)
            finished = [n for n in self.options.stream_ns if limit is None or n < limit]
            if limit is None or len(finished) >= 2:
                continue
            smallest = min(finished or [limit])
            for n in (smallest // 4, smallest // 2):
                for rep in range(self.options.reps):
                    job = self.job(server, kind=kind, n=n, timeout=self.options.stream_timeout)
                    self.record(scenario, server, rep, self.measure(job), n=n, probe=True)

    def memory(self, deployments: list[Deployment]) -> None:
        unfinished: set[str] = set()
        for rep in range(self.options.memory_reps):
            for deployment in deployments:
                if not deployment.runs("memory") or deployment.name in unfinished:
                    continue
                with ServerPool(self.options.log_dir, self.server_cpus, self.code) as pool:
                    server = self.start(pool, deployment)
                    if server is None:
                        continue
                    self.warm_up(server)
                    time.sleep(0.5)
                    before = server.rss()
                    job = self.job(
                        server,
                        kind="sync",
                        concurrency=16,
                        duration=self.options.memory_timeout,
                        max_runs=self.options.memory_runs,
                        record_completions=True,
                        window=self.options.memory_window,
                    )
                    result = self.measure(job, retry=False)  # a second pass would start from another RSS
                    after = server.rss()
                    self.record("memory", server, rep, result, rss_before=before, rss_after=after)
                    if result.get("ok", 0) < self.options.memory_runs:
                        unfinished.add(deployment.name)  # too slow to finish: once is enough
                self.servers.remove(server)

    def memory_max(self, deployments: list[Deployment]) -> None:
        """``memory-max``: per shape, a fresh server, RSS before, after and at peak around its runs."""
        for shape in LIMIT_SHAPES:
            for deployment in deployments:
                if not deployment.runs("memory") or deployment.kind == "floor":
                    continue
                with ServerPool(self.options.log_dir, self.server_cpus, self.code) as pool:
                    server = self.start(pool, deployment)
                    if server is None:
                        continue
                    self.warm_up(server)
                    time.sleep(0.5)
                    before = server.rss()
                    job = self.job(
                        server,
                        kind="limits",
                        shape=shape,
                        concurrency=4,
                        max_runs=self.options.limits_runs,
                        body_size=self.options.limits_body_size,
                        timeout=max(self.options.request_timeout, 120.0),
                    )
                    result = self.measure(job, retry=False)
                    time.sleep(0.5)
                    after, peak = server.rss(), server.peak_rss()
                    self.record("memory-max", server, 0, result, shape=shape, rss_before=before,
                                rss_after=after, rss_peak=peak)  # fmt: skip
                    _log(
                        f"memory-max {shape} {deployment.name}: RSS {before / 2**20:.0f} -> "
                        f"{after / 2**20:.0f} MiB (peak {peak / 2**20:.0f}), {result.get('outcomes')}"
                    )
                self.servers.remove(server)


def _jsonable(options: Options) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in options.__dict__.items()}


def run(options: Options) -> Results:
    """Run the benchmark described by ``options``; every server started is stopped on return."""
    if options.ref is None:
        return _run_from(options, REPO)
    with source.exported(options.ref) as code:
        return _run_from(options, code)


def _run_from(options: Options, code: Path) -> Results:
    state = BenchRun(options, code)
    deployments = state.available(_selection(options.deployments, options.workers))
    for scenario in options.scenarios:
        if scenario == "memory":
            state.memory(deployments)
            continue
        if scenario == "memory-max":
            state.memory_max(deployments)
            continue
        # Fresh servers for each scenario: no figure depends on the runs an earlier scenario left
        # behind (acp-sdk, for one, slows down as finished runs pile up).
        with ServerPool(options.log_dir, state.server_cpus, code) as pool:
            servers = [s for d in deployments if d.runs(scenario) and (s := state.start(pool, d)) is not None]
            for server in servers:
                _log(f"{scenario}: {server.deployment.name} up on 127.0.0.1:{server.port}; warming up")
                state.warm_up(server, scenario)
            if scenario in ("stream", "a2a-stream"):
                state.stream(servers, scenario)
            else:
                state.load(scenario, servers)
        state.servers.clear()
    return state.results
