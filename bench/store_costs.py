"""What a run and a stream event cost each store: ``python -m bench.store_costs [--stores
memory,redis,postgres] [--runs 2000] [--clients 16] [--parts 2000] [--reps 3]``.

In this one process, on one event loop, the neutral service (:meth:`ACPService.handle`, the code every
framework adapter calls) serves sync ``echo`` runs from ``--clients`` concurrent callers, then
``chunks`` streams of ``--parts`` parts and of none, against each store:

* ``memory``: the in-memory store;
* ``redis``: the Redis store on a private ``redis-server`` started for the measurement (never the
  machine's main Redis), so that its counters are this measurement's alone;
* ``postgres``: the Django database store on a scratch database of the PostgreSQL at ``DATABASE_URL``
  (created, migrated and dropped as for the bench's ``django-postgres`` deployment).

For a sync run and for one stream event (a stream of N parts less a stream of none, over N) it prints
the process's CPU time (what a web worker spends: the core, the store's client, the store's threads),
and the store's side: for Redis the commands it executes (``INFO commandstats``, the scripts' own
commands included) and its CPU time (``INFO cpu``); for PostgreSQL the CPU time of the backends
serving the scratch database (``/proc``, counted in clock ticks: measure thousands of runs). No HTTP
server is in the way: a framework's own cost per request is its floor's, which ``python -m bench``
measures. The round trips, statements and transactions per run are pinned by the tests
(``tests/stores/test_redis_round_trips.py``, ``tests/django_store/test_query_counts.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["main"]

REPO = Path(__file__).resolve().parent.parent
STORES = ("memory", "redis", "postgres")


@dataclass
class Sample:
    """What one measured step cost: seconds of this process's CPU and of the clock, store counters."""

    cpu: float
    wall: float
    store: dict[str, float]

    def __sub__(self, other: Sample) -> Sample:
        keys = self.store.keys() | other.store.keys()
        diff = {key: self.store.get(key, 0.0) - other.store.get(key, 0.0) for key in keys}
        return Sample(self.cpu - other.cpu, self.wall - other.wall, diff)

    def per(self, count: int) -> Sample:
        return Sample(self.cpu / count, self.wall / count, {k: v / count for k, v in self.store.items()})


Counters = Callable[[], dict[str, float]]


# the stores ---------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _redis() -> Iterator[tuple[Any, Counters]]:
    """A private redis-server, the Redis store on it, and its counters."""
    import redis

    from acp_adapters.stores.redis import RedisStore

    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    port, directory = _free_port(), tempfile.mkdtemp(prefix="acp-bench-redis-")
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*command, "--dir", directory], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

        def counters() -> dict[str, float]:
            stats = client.info("commandstats")
            commands = sum(
                int(value["calls"])
                for name, value in stats.items()
                if name not in ("cmdstat_info", "cmdstat_config", "cmdstat_ping")
            )
            cpu = client.info("cpu")
            return {
                "redis commands": float(commands),
                "redis cpu us": (float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])) * 1e6,
            }

        yield RedisStore.from_url(f"redis://127.0.0.1:{port}/0"), counters
    finally:
        client.close()
        process.terminate()
        process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def _postgres() -> Iterator[tuple[Any, Counters]]:
    """The Django database store on a scratch PostgreSQL database, and the database's counters."""
    import psycopg

    from bench.setups import django_postgres

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.django_pg_settings"}
    with django_postgres(REPO, env) as extra:
        os.environ.update({**extra, "DJANGO_SETTINGS_MODULE": "bench.django_pg_settings"})
        import django

        django.setup()
        from acp_adapters.django.db.store import DjangoStore

        name = extra["BENCH_DATABASE_URL"].rsplit("/", 1)[1]
        monitor = psycopg.connect(extra["BENCH_DATABASE_URL"], autocommit=True)
        tick = os.sysconf("SC_CLK_TCK")

        def backends_cpu() -> float:
            rows = monitor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
            ).fetchall()
            total = 0
            for (pid,) in rows:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:  # (a backend that has just gone)
                    continue
                total += int(fields[11]) + int(fields[12])  # utime, stime
            return total / tick * 1e6

        def counters() -> dict[str, float]:
            return {"pg backends cpu us": backends_cpu()}

        try:
            yield DjangoStore(), counters
        finally:
            monitor.close()
            from django.db import connections

            connections.close_all()


@contextmanager
def _store(name: str) -> Iterator[tuple[Any, Counters]]:
    if name == "memory":
        yield None, dict
    elif name == "redis":
        with _redis() as made:
            yield made
    else:
        with _postgres() as made:
            yield made


# the load -----------------------------------------------------------------------------------------------
async def _measure(counters: Counters, work: Callable[[], Awaitable[None]]) -> Sample:
    before = Sample(time.process_time(), time.perf_counter(), counters())
    await work()
    return Sample(time.process_time(), time.perf_counter(), counters()) - before


async def _costs(store: Any, counters: Counters, args: argparse.Namespace) -> dict[str, list[Sample]]:
    from acp_adapters.core.http import Request, Response, StreamResponse
    from acp_adapters.core.service import ACPService
    from example_agents import DEMO_SETTINGS, demo_registry

    service = ACPService(demo_registry(), store=store, settings=DEMO_SETTINGS)

    def request(agent: str, text: str, mode: str) -> Request:
        message = {"role": "user", "parts": [{"content": text}]}
        body = json.dumps({"agent_name": agent, "input": [message], "mode": mode}).encode()
        headers = {"content-type": "application/json"}
        return Request("POST", "/runs", "http://127.0.0.1/acp", headers=headers, body=body)

    sync = request("echo", "hello", "sync")

    async def sync_runs(count: int) -> None:
        async def client(runs: int) -> None:
            for _ in range(runs):
                answer = await service.handle(sync)
                assert isinstance(answer, Response) and b'"completed"' in answer.body, answer

        await asyncio.gather(*(client(count // args.clients) for _ in range(args.clients)))

    async def streams(parts: int) -> None:
        for _ in range(args.streams):
            answer = await service.handle(request("chunks", str(parts), "stream"))
            assert isinstance(answer, StreamResponse)
            body = b"".join([chunk async for chunk in answer.body])
            assert b"run.completed" in body and body.count(b"message.part") == parts

    try:
        await sync_runs(min(args.runs, 400))  # warm: connections, scripts, caches
        await streams(10)
        figures: dict[str, list[Sample]] = {"run": [], "event": []}
        runs = args.runs // args.clients * args.clients
        for _ in range(args.reps):
            figures["run"].append((await _measure(counters, lambda: sync_runs(runs))).per(runs))
            empty = await _measure(counters, lambda: streams(0))
            full = await _measure(counters, lambda: streams(args.parts))
            figures["event"].append((full - empty).per(args.parts * args.streams))
        return figures
    finally:
        await service.aclose()


def _median(samples: list[Sample], key: str) -> float:
    if key == "cpu":
        return statistics.median(s.cpu for s in samples) * 1e6
    if key == "wall":
        return statistics.median(s.wall for s in samples) * 1e6
    return statistics.median(s.store.get(key, 0.0) for s in samples)


def _row(store: str, what: str, samples: list[Sample]) -> str:
    keys = sorted({key for sample in samples for key in sample.store})
    cpu = [s.cpu * 1e6 for s in samples]
    store_side = ", ".join(f"{key} {_median(samples, key):,.2f}" for key in keys) or "-"
    return (
        f"| {store} | {what} | {_median(samples, 'cpu'):,.1f} ({min(cpu):,.1f}-{max(cpu):,.1f}) "
        f"| {_median(samples, 'wall'):,.1f} | {store_side} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.store_costs", description=__doc__)
    parser.add_argument(
        "--stores", default=",".join(STORES), help="comma-separated, from " + ", ".join(STORES)
    )
    parser.add_argument("--runs", type=int, default=2000, help="sync runs per measurement")
    parser.add_argument("--clients", type=int, default=16, help="concurrent callers of the sync runs")
    parser.add_argument("--parts", type=int, default=2000, help="parts of each measured stream")
    parser.add_argument("--streams", type=int, default=3, help="streams per measurement")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (medians, with the min-max)")
    args = parser.parse_args(argv)
    stores = [name.strip() for name in args.stores.split(",") if name.strip()]
    unknown = sorted(set(stores) - set(STORES))
    if unknown or args.runs < args.clients or min(args.parts, args.streams, args.reps) < 1:
        raise SystemExit(f"bad arguments (unknown stores: {unknown})")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    rows = []
    for name in stores:
        with _store(name) as (store, counters):
            figures = asyncio.run(_costs(store, counters, args))
        rows.append(_row(name, "sync echo run", figures["run"]))
        rows.append(_row(name, "stream event", figures["event"]))
        print(f"store_costs: {name} done", file=sys.stderr, flush=True)
    print(
        f"One process, the neutral service; {args.runs} sync echo runs from {args.clients} callers, "
        f"{args.streams} streams of {args.parts} parts less {args.streams} of none; medians of {args.reps}."
    )
    print("| store | per | worker CPU us (min-max) | wall us | store side (per run or event) |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
