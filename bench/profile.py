"""Where a deployment spends its time: py-spy samples the server while the load generator drives it.

``python -m bench.profile starlette --load sync-16 --seconds 10`` starts the deployment (pinned,
as the harness does), attaches py-spy to it (``pip install py-spy``), runs the load and prints the
functions with the largest share of the server's CPU samples, by self time and by inclusive time,
as ``file:function``. ``--load stream`` streams ``chunks`` with ``--n`` parts over and over.
The raw collapsed stacks are kept in ``bench/results/`` for a flame graph.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench import harness, source
from bench.deployments import by_name
from bench.servers import REPO, Server, ServerPool, StartError

__all__ = ["main", "summarise_stacks"]

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frame_name(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    return f"{match['file']}:{match['function']}"


def _area(name: str) -> str:
    """What a frame belongs to: an acp_adapters module, else its top-level package or module."""
    path = name.rsplit(":", 1)[0]
    if path.startswith("acp_adapters/"):
        return path
    return path.split("/", 1)[0].removesuffix(".py")


def summarise_stacks(raw: str, top: int = 25) -> str:
    """Markdown tables of where the samples (py-spy raw format) fall: by area, by function (self time)
    and by acp_adapters function (inclusive time)."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    areas: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";")[1:]]  # the first is the process
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        areas[_area(frames[-1])] += count
        for name in set(frames):
            if name.startswith("acp_adapters/"):
                inclusive[name] += count
    if not total:
        return "no samples (is py-spy allowed to attach? it needs ptrace)"

    def table(title: str, counter: collections.Counter[str], rows: int) -> list[str]:
        body = [f"| {100 * c / total:.1f}% | `{name}` |" for name, c in counter.most_common(rows)]
        return ["", f"| {title} | |", "|---|---|", *body]

    return "\n".join(
        [
            f"{total} samples of the server's busy threads",
            *table("self time, by area", areas, top),
            *table("self time, by function", own, top),
            *table("inclusive time, acp_adapters functions", inclusive, top),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("deployment", help="a deployment id, e.g. starlette (see python -m bench --list)")
    parser.add_argument("--load", choices=("sync-1", "sync-16", "async", "stream"), default="sync-16")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to load and sample")
    parser.add_argument("--n", type=int, default=20_000, help="parts per stream (--load stream)")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--native", action="store_true", help="also sample C extensions (slower)")
    parser.add_argument("--ref", help="profile this git revision of the adapters instead of the working tree")
    args = parser.parse_args(argv)
    if args.ref is None:
        return _profile(args, REPO)
    with source.exported(args.ref) as code:
        return _profile(args, code)


def _profile(args: argparse.Namespace, code: Path) -> int:

    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    deployment = by_name(args.deployment)
    run = harness.BenchRun(harness.Options(deployments=(deployment.name,)), code)
    if run.available([deployment]) != [deployment]:
        raise SystemExit(f"{deployment.name}: {run.results.deployments[deployment.name]['note']}")
    out = REPO / "bench" / "results" / f"profile-{deployment.name}-{args.load}-{time.strftime('%H%M%S')}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    with ServerPool(run.options.log_dir, run.server_cpus, code) as pool:
        try:
            server = pool.start(deployment, run.python[deployment.name])
        except StartError as exc:
            raise SystemExit(f"{deployment.name} did not start: {exc}") from None
        run.warm_up(server)
        command = [
            py_spy,
            "record",
            "--pid",
            str(server.process.pid),
            "--format",
            "raw",
            "--output",
            str(out),
        ]
        command += ["--rate", str(args.rate), "--duration", str(int(args.seconds) + 1), "--subprocesses"]
        command += ["--native"] if args.native else []
        spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)  # let py-spy attach
            _drive(run, server, args)
        finally:
            try:
                _, errors = spy.communicate(timeout=args.seconds + 60)
            except subprocess.TimeoutExpired:
                spy.kill()
                _, errors = spy.communicate()
    if not out.exists():
        raise SystemExit(f"py-spy wrote nothing: {errors.strip()[-500:]}")
    print(summarise_stacks(out.read_text(), args.top))
    print(f"\nraw stacks: {out}", file=sys.stderr)
    return 0


def _drive(run: harness.BenchRun, server: Server, args: argparse.Namespace) -> None:
    deadline = time.monotonic() + args.seconds
    if args.load == "stream":
        while time.monotonic() < deadline:
            result = run.loadgen(run.job(server, kind="stream", n=args.n))
            print(f"stream of {args.n}: {result.get('elapsed', 0):.2f} s", file=sys.stderr)
        return
    kind = "async" if args.load == "async" else "sync"
    concurrency = 1 if args.load == "sync-1" else 16
    job = run.job(server, kind=kind, concurrency=concurrency, duration=args.seconds, max_runs=10**7)
    result = run.loadgen(job)
    print(
        f"{args.load}: {result.get('rate', 0):,.0f} runs/s, {result.get('failures')} failed", file=sys.stderr
    )


if __name__ == "__main__":
    raise SystemExit(main())
