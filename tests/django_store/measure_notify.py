"""Poll or LISTEN/NOTIFY? Measures the Django database store on PostgreSQL both ways.

``python -m tests.django_store.measure_notify`` (needs PostgreSQL at ``DATABASE_URL``) creates a scratch
database, then, for each mode, runs a writer and a reader in two separate processes (two workers):

* latency: the writer appends one event every 200 ms; how long until the reader has it;
* stream: the writer appends 3,000 events back to back; how long until the reader has them all, and how
  many queries the reader made;
* idle: the reader waits for signals on 20 runs for 6 s and nothing comes; its queries per second;
* append cost: appends per second of a lone writer.

It prints a markdown table (docs/django-store.md quotes one run).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from typing import Any

from tests.deployments.django_postgres import DATABASE_URL, scratch_database


def _setup(url: str) -> None:
    import django
    from django.conf import settings

    from tests.django_store.settings import postgres_database

    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "acp_adapters.django",
            "acp_adapters.django.db",
        ],
        DATABASES={"default": postgres_database(url)},
        USE_TZ=True,
    )
    django.setup()


def _store(listen: bool, queries: list[int] | None = None) -> Any:
    """A store; with ``queries``, one that counts its database queries in ``queries[0]``."""
    from acp_adapters.django.db.store import DjangoStore

    store = DjangoStore(listen=listen)
    if queries is not None:
        run_in_thread = store._in_thread

        async def counted(query: Any, retry: bool) -> Any:
            queries[0] += 1
            return await run_in_thread(query, retry)

        store._in_thread = counted  # type: ignore[method-assign]  # wraps this instance's method to count
    return store


def _event(n: int) -> Any:
    from acp_adapters.core.store import EventRecord

    return EventRecord("message.part", b'{"type":"message.part","part":{"content":"%d "}}' % n)


def reader(url: str, listen: bool, scenario: str, run_ids: list[str], count: int, out: Any) -> None:
    _setup(url)

    async def main() -> Any:
        queries = [0]
        store = _store(listen, queries)
        try:
            if scenario == "idle":
                waits = [asyncio.create_task(store.receive_signal(uuid.UUID(r))) for r in run_ids]
                await asyncio.sleep(1)  # the first looks, before the measure
                out.put("ready")
                queries[0] = 0
                await asyncio.sleep(6)
                for task in waits:
                    task.cancel()
                return [], queries[0] / 6
            run_id, seen, times = uuid.UUID(run_ids[0]), 1, []
            out.put("ready")
            while seen < count + 1:
                events = await store.read_events(run_id, seen, timeout=30)
                now = time.time()
                times += [now] * len(events)
                seen += len(events)
            return times, queries[0]
        finally:
            await store.close()

    out.put(asyncio.run(main()))


def writer(url: str, listen: bool, scenario: str, run_id: str, count: int, out: Any) -> None:
    _setup(url)

    async def main() -> list[float]:
        store = _store(listen)
        times = []
        try:
            for n in range(count):
                await store.append_events(uuid.UUID(run_id), [_event(n)])
                times.append(time.time())
                if scenario == "latency":
                    await asyncio.sleep(0.2)
        finally:
            await store.close()
        return times

    out.put(asyncio.run(main()))


def _new_runs(url: str, how_many: int) -> list[str]:
    _setup(url)
    from django.utils import timezone

    from acp_adapters.core.models import Run
    from acp_adapters.core.store import EventRecord, RunRecord
    from acp_adapters.django.db import ops as db_ops

    ids = []
    for _ in range(how_many):
        run = Run(agent_name="bench")
        db_ops.create_run(
            "default", RunRecord(run=run), [EventRecord("run.created", b"{}")], timezone.now(), 3600
        )
        ids.append(str(run.run_id))
    return ids


def measure(url: str, listen: bool) -> dict[str, str]:
    spawn = multiprocessing.get_context("spawn")
    results: dict[str, str] = {}
    with spawn.Pool(1) as pool:
        latency_run, stream_run, *idle_runs = pool.apply(_new_runs, (url, 22))

    def pair(scenario: str, run_ids: list[str], count: int) -> tuple[Any, Any]:
        queue = spawn.Queue()
        read = spawn.Process(target=reader, args=(url, listen, scenario, run_ids, count, queue))
        read.start()
        assert queue.get(timeout=60) == "ready"
        time.sleep(0.5)
        written: Any = None
        if scenario != "idle":
            write_queue = spawn.Queue()
            write = spawn.Process(target=writer, args=(url, listen, scenario, run_ids[0], count, write_queue))
            write.start()
            written = write_queue.get(timeout=300)
            write.join()
        got = queue.get(timeout=300)
        read.join()
        return written, got

    written, (got, _) = pair("latency", [latency_run], 30)
    delays = sorted((g - w) * 1000 for w, g in zip(written, got, strict=True))
    results["latency, median / p95 / max (ms)"] = (
        f"{statistics.median(delays):.1f} / {delays[int(len(delays) * 0.95) - 1]:.1f} / {delays[-1]:.1f}"
    )
    written, (got, reads) = pair("stream", [stream_run], 3000)
    results["stream of 3,000: until the reader has all (s)"] = f"{got[-1] - written[0]:.2f}"
    results["stream of 3,000: writer's appends/s"] = f"{3000 / (written[-1] - written[0]):.0f}"
    results["stream of 3,000: the reader's queries"] = f"{reads}"
    _, (_, idle_rate) = pair("idle", idle_runs, 0)
    results["idle, 20 runs waiting for a signal: the reader's queries/s"] = f"{idle_rate:.1f}"
    return results


def main() -> None:
    with scratch_database(DATABASE_URL) as url:
        env = {**os.environ, "PYTHONPATH": os.getcwd()}
        setup = f"from tests.django_store.measure_notify import _setup; _setup({url!r});"
        migrate = "from django.core.management import call_command; call_command('migrate', verbosity=0)"
        import subprocess

        subprocess.run([sys.executable, "-c", setup + migrate], check=True, env=env)
        poll, notify = measure(url, listen=False), measure(url, listen=True)
    print("| measure | poll (50 ms, backing off to 250 ms) | LISTEN/NOTIFY |")
    print("| --- | --- | --- |")
    for key in poll:
        print(f"| {key} | {poll[key]} | {notify[key]} |")


if __name__ == "__main__":
    main()
