"""Time to a stream's first event against the framework floor's, in pairs: ``python -m bench.first_event
[-d django-asgi,flask,...] [--pairs 31] [--n 1000] [--ref REV] [--workers N]``.

Each deployment runs beside its floor (``bench/floors/``, the same server); the two are asked for a
``chunks`` stream of ``--n`` parts in turn (adapter, floor, floor, adapter, ...: whoever goes first
alternates), and each stream's first event is timed from the ``POST``. On a busy machine a single
stream's figure is mostly the machine's; a pair taken back to back shares its moment, so the median of
the per-pair ratios is the steady figure (``python -m bench``'s ``stream`` scenario times one stream
per repetition). Every stream is checked as the bench checks it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import source
from bench.deployments import Deployment, by_name
from bench.harness import _cpus
from bench.loadgen import _stream
from bench.servers import REPO, Server, ServerPool, service_missing

__all__ = ["main"]

DEFAULT = ("starlette", "flask", "django-wsgi", "django-asgi")


async def _first_event_ms(server: Server, n: int) -> float:
    job = {"kind": "stream", "host": "127.0.0.1", "port": server.port, "mount": server.deployment.mount}
    job.update(n=n, timeout=60)
    result: dict[str, Any] = await _stream(job)
    if result["failures"] or result["first_event_ms"] is None:
        raise SystemExit(f"{server.deployment.name}: {result['errors']}")
    return float(result["first_event_ms"])


def _pairs(adapter: Server, floor: Server, n: int, pairs: int) -> list[tuple[float, float]]:
    async def measure() -> list[tuple[float, float]]:
        for server in (adapter, floor, adapter, floor):  # warm: imports, connections, caches
            await _first_event_ms(server, n)
        taken = []
        for index in range(pairs):
            if index % 2 == 0:
                mine = await _first_event_ms(adapter, n)
                theirs = await _first_event_ms(floor, n)
            else:
                theirs = await _first_event_ms(floor, n)
                mine = await _first_event_ms(adapter, n)
            taken.append((mine, theirs))
        return taken

    return asyncio.run(measure())


def _row(deployment: Deployment, taken: list[tuple[float, float]]) -> str:
    mine = statistics.median(pair[0] for pair in taken)
    theirs = statistics.median(pair[1] for pair in taken)
    ratios = sorted(pair[0] / pair[1] for pair in taken)
    quarter = len(ratios) // 4
    return (
        f"| {deployment.label} ({deployment.server_label}) | {mine:.2f} | {theirs:.2f} "
        f"| {statistics.median(ratios):.2f}x ({ratios[quarter]:.2f}-{ratios[-1 - quarter]:.2f}) "
        f"| {mine / theirs:.2f}x |"
    )


@contextlib.contextmanager
def _code(ref: str | None) -> Iterator[Path]:
    if ref is None:
        yield REPO
    else:
        with source.exported(ref) as code:
            yield code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.first_event", description=__doc__)
    parser.add_argument("-d", "--deployments", default=",".join(DEFAULT), help="comma-separated ids")
    parser.add_argument("--pairs", type=int, default=31, help="pairs of streams per deployment")
    parser.add_argument("--n", type=int, default=1000, help="parts of each stream")
    parser.add_argument("--ref", help="measure this git revision instead of the working tree")
    parser.add_argument("--workers", type=int, help="workers of the multi-worker deployments (default 4)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and client to cores")
    args = parser.parse_args(argv)
    server_cpus, client_cpus = _cpus(not args.no_pin)
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)
    rows = []
    with _code(args.ref) as code, ServerPool(REPO / "bench" / "results" / "logs", server_cpus, code) as pool:
        for name in (part.strip() for part in args.deployments.split(",") if part.strip()):
            deployment = by_name(name)
            assert deployment.floor is not None, f"{name} has no floor"
            floor = by_name(deployment.floor)
            if args.workers is not None and deployment.workers > 1:
                deployment, floor = (
                    replace(deployment, workers=args.workers),
                    replace(floor, workers=args.workers),
                )
            missing = next(filter(None, (service_missing(s) for s in deployment.services)), None)
            if missing:
                print(f"first_event: skipping {name}: {missing}", file=sys.stderr)
                continue
            servers = pool.start(deployment, sys.executable), pool.start(floor, sys.executable)
            rows.append(_row(deployment, _pairs(*servers, args.n, args.pairs)))
            for server in servers:
                server.stop()
            print(f"first_event: {name} done", file=sys.stderr, flush=True)
    print(f"First event of a stream of {args.n} parts, {args.pairs} pairs (adapter and floor in turn), ms:")
    print("| deployment | adapter ms | floor ms | x floor, median of pairs (quartiles) | ratio of medians |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
