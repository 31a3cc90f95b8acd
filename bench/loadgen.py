"""The load generator: runs one measurement against one server, in a process of its own.

``python -m bench.loadgen`` reads a job (JSON) on stdin and writes its result (JSON) on stdout. The
harness starts one such process per measurement, pinned to another core than the servers. Every loop
is bounded in count and in time; every answer is checked (:mod:`bench.checks`).

Jobs (``kind``):

* ``sync``: ``concurrency`` keep-alive clients post sync runs of ``echo`` for ``duration`` seconds
  or ``max_runs`` runs in all; gives runs/s and latency percentiles. With ``record_completions``,
  also the throughput over the first and the last ``window`` runs (the memory scenario).
* ``async``: the same with async runs, each polled with ``GET /runs/{id}`` until completed.
* ``stream``: one stream run of ``chunks`` with ``n`` parts; gives total time, time to first event.
* ``a2a-send``, ``a2a-stream``: the same over A2A (JSON-RPC, A2A 1.0, to ``{mount}/echo`` and
  ``{mount}/chunks``): blocking ``SendMessage`` from closed-loop clients, one ``SendStreamingMessage``.
* ``limits``: ``concurrency`` clients post ``max_runs`` sync runs of one maximum-size ``shape``
  (:func:`limits_request`): a body of ``body_size`` bytes in one text part (``max-body``) or in parts of
  one character, 1,000 per message (``max-parts``), or a tiny request for the most output the demo
  ``chunks`` agent makes (``max-log``). A run may complete, or fail by a limit of the server (its log
  cap, its run deadline) or be refused (413, 422, 429): each is counted, none is a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import string
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.checks import (
    A2AStreamChecker,
    CheckFailed,
    SSEParser,
    StreamChecker,
    a2a_request_body,
    check_a2a_send,
    check_run,
    run_request_body,
)
from bench.http_client import Connection, HTTPError, build_request

__all__ = ["run_job"]

TEXT = "hi"
MAX_POLLS = 10_000
MAX_ERRORS_KEPT = 5
A2A_HEADERS = ("A2A-Version: 1.0",)


@dataclass
class Tally:
    """What the clients of one job saw."""

    latencies: list[float] = field(default_factory=list)
    completions: list[float] = field(default_factory=list)
    failures: int = 0
    errors: list[str] = field(default_factory=list)
    polls: int = 0
    started: int = 0

    def fail(self, message: str) -> None:
        self.failures += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(message)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise CheckFailed(f"answer is not JSON: {body[:120]!r}") from None


async def _sync_run(conn: Connection, raw: bytes, tally: Tally) -> None:
    reply = await conn.request(raw)
    if reply.status != 200:
        raise CheckFailed(f"status {reply.status}: {reply.body[:200]!r}")
    check_run(_json(reply.body), TEXT)


async def _a2a_send(conn: Connection, raw: bytes, tally: Tally) -> None:
    reply = await conn.request(raw)
    if reply.status != 200:
        raise CheckFailed(f"status {reply.status}: {reply.body[:200]!r}")
    check_a2a_send(_json(reply.body), TEXT)


async def _async_run(
    conn: Connection, raw: bytes, job: dict[str, Any], tally: Tally, deadline: float
) -> None:
    reply = await conn.request(raw)
    if reply.status != 202:
        raise CheckFailed(f"status {reply.status} to an async create: {reply.body[:200]!r}")
    run = _json(reply.body)
    run_id = run.get("run_id") if isinstance(run, dict) else None
    if not run_id or run.get("status") not in ("created", "in-progress", "completed"):
        raise CheckFailed(f"async create answered {str(run)[:200]}")
    poll = build_request("GET", job["host"], job["port"], f"{job['mount']}/runs/{run_id}")
    for _ in range(MAX_POLLS):
        if time.monotonic() > deadline:
            raise CheckFailed(f"run {run_id} not completed before the deadline")
        tally.polls += 1
        reply = await conn.request(poll)
        if reply.status != 200:
            raise CheckFailed(f"status {reply.status} to GET /runs/{run_id}: {reply.body[:200]!r}")
        run = _json(reply.body)
        if run.get("run_id") != run_id:
            raise CheckFailed(f"GET /runs/{run_id} answered run {run.get('run_id')}")
        if run.get("status") not in ("created", "in-progress"):
            check_run(run, TEXT)
            return
    raise CheckFailed(f"run {run_id} still not completed after {MAX_POLLS} polls")


async def _load(job: dict[str, Any]) -> dict[str, Any]:
    """``sync`` and ``async`` jobs: closed-loop clients on keep-alive connections."""
    tally = Tally()
    mode = job["kind"]
    if mode == "a2a-send":
        body = a2a_request_body("SendMessage", TEXT)
        raw = build_request("POST", job["host"], job["port"], f"{job['mount']}/echo", body, A2A_HEADERS)
    else:
        body = run_request_body("echo", TEXT, mode)
        raw = build_request("POST", job["host"], job["port"], f"{job['mount']}/runs", body)
    max_runs = int(job["max_runs"])
    start = time.perf_counter()
    deadline = time.monotonic() + float(job["duration"])
    hard_deadline = deadline + float(job["timeout"])

    async def client() -> None:
        conn = Connection(job["host"], job["port"])
        try:
            while tally.started < max_runs and time.monotonic() < deadline:
                tally.started += 1
                began = time.perf_counter()
                try:
                    if mode == "sync":
                        await asyncio.wait_for(_sync_run(conn, raw, tally), job["timeout"])
                    elif mode == "a2a-send":
                        await asyncio.wait_for(_a2a_send(conn, raw, tally), job["timeout"])
                    else:
                        await asyncio.wait_for(
                            _async_run(conn, raw, job, tally, hard_deadline), job["timeout"]
                        )
                except (CheckFailed, HTTPError, asyncio.TimeoutError, OSError) as exc:
                    tally.fail(f"{type(exc).__name__}: {exc}")
                    conn.close()
                    continue
                done = time.perf_counter()
                tally.latencies.append(done - began)
                if job.get("record_completions"):
                    tally.completions.append(done)
        finally:
            conn.close()

    await asyncio.gather(*(client() for _ in range(int(job["concurrency"]))))
    elapsed = time.perf_counter() - start
    ok = len(tally.latencies)
    result: dict[str, Any] = {
        "ok": ok,
        "failures": tally.failures,
        "errors": tally.errors,
        "elapsed": elapsed,
        "rate": ok / elapsed if elapsed else 0.0,
        "p50_ms": _ms(_percentile(tally.latencies, 0.50)),
        "p99_ms": _ms(_percentile(tally.latencies, 0.99)),
    }
    if mode == "async":
        result["polls_per_run"] = tally.polls / max(1, ok + tally.failures)
    if job.get("record_completions"):
        result.update(_windows(tally.completions, start, int(job.get("window", 500))))
    return result


def _windows(completions: list[float], start: float, window: int) -> dict[str, Any]:
    """Throughput over the first and over the last ``window`` runs that finished."""
    times = sorted(completions)
    if len(times) < 2 * window:
        return {"early_rate": None, "late_rate": None}
    early = window / (times[window - 1] - start)
    late = window / (times[-1] - times[-window - 1])
    return {"early_rate": early, "late_rate": late}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


async def _stream(job: dict[str, Any]) -> dict[str, Any]:
    """One ``stream`` run of ``chunks`` with ``n`` parts, every event checked in order."""
    n = int(job["n"])
    checker: StreamChecker | A2AStreamChecker
    if job["kind"] == "a2a-stream":
        body = a2a_request_body("SendStreamingMessage", str(n))
        raw = build_request("POST", job["host"], job["port"], f"{job['mount']}/chunks", body, A2A_HEADERS)
        checker = A2AStreamChecker(n)
    else:
        body = run_request_body("chunks", str(n), "stream")
        raw = build_request("POST", job["host"], job["port"], f"{job['mount']}/runs", body)
        checker = StreamChecker(n)
    conn = Connection(job["host"], job["port"])
    parser = SSEParser()
    first: float | None = None
    start = time.perf_counter()

    async def consume() -> None:
        nonlocal first
        status, headers, body = await conn.stream(raw)
        if status != 200:
            raise CheckFailed(f"status {status} to a stream run: {b''.join([c async for c in body])[:200]!r}")
        if not headers.get(b"content-type", b"").startswith(b"text/event-stream"):
            raise CheckFailed(f"content-type {headers.get(b'content-type')!r}, not text/event-stream")
        async for data in body:
            for event in parser.feed(data):
                if first is None:
                    first = time.perf_counter()
                checker.feed(event)
        checker.finish()
        if parser.leftover.strip():
            raise CheckFailed(f"stream ends in a partial event: {parser.leftover[:120]!r}")

    result: dict[str, Any] = {"n": n, "events": 0, "failures": 0, "errors": [], "timed_out": False}
    try:
        await asyncio.wait_for(consume(), job["timeout"])
    except asyncio.TimeoutError:
        result.update(failures=1, timed_out=True, errors=[f"did not finish in {job['timeout']} s"])
    except (CheckFailed, HTTPError, OSError) as exc:
        result.update(failures=1, errors=[f"{type(exc).__name__}: {exc}"])
    finally:
        conn.close()
    elapsed = time.perf_counter() - start
    result.update(
        events=checker.events,
        parts=checker.parts,
        elapsed=elapsed,
        rate=checker.events / elapsed if elapsed else 0.0,
        first_event_ms=None if first is None else (first - start) * 1000.0,
    )
    return result


#: Bytes of the ``POST /runs`` body around the input messages (agent name, mode, brackets).
_ENVELOPE = 200
#: The demo ``chunks`` agent's most parts.
_MOST_CHUNKS = 100_000


def limits_request(shape: str, body_size: int) -> tuple[bytes, list[str] | None]:
    """The body of one maximum-size run of ``shape`` within ``body_size`` bytes, and the output texts
    a completed run must give (``None``: not checked part by part, only counted)."""
    rng = random.Random(7)  # text that compresses no better than real text
    alphabet = string.ascii_letters + string.digits
    if shape == "max-body":
        text = "".join(rng.choices(alphabet, k=body_size - _ENVELOPE))
        return run_request_body("echo", text, "sync"), [text]
    if shape == "max-parts":
        part = '{"content":"x"},'
        per_message = 1000
        size = len('{"role":"user","parts":[]},') + per_message * len(part)
        messages = [
            {"role": "user", "parts": [{"content": "x"}] * per_message}
            for _ in range(min(1000, (body_size - _ENVELOPE) // size))
        ]
        body = {"agent_name": "echo", "input": messages, "mode": "sync"}
        return json.dumps(body, separators=(",", ":")).encode(), None
    if shape == "max-log":
        return run_request_body("chunks", str(_MOST_CHUNKS), "sync"), None
    raise ValueError(f"unknown shape {shape!r}")


async def _limits(job: dict[str, Any]) -> dict[str, Any]:
    """``limits`` jobs: sync runs of one maximum-size shape; completed, limited and refused counted."""
    body, expected = limits_request(job["shape"], int(job["body_size"]))
    raw = build_request("POST", job["host"], job["port"], f"{job['mount']}/runs", body)
    tally = Tally()
    outcomes: dict[str, int] = {}
    max_runs = int(job["max_runs"])
    start = time.perf_counter()

    def count(outcome: str) -> None:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    async def one(conn: Connection) -> None:
        reply = await conn.request(raw)
        if reply.status in (413, 422, 429):
            count(f"refused {reply.status}")
            return
        if reply.status != 200:
            raise CheckFailed(f"status {reply.status}: {reply.body[:200]!r}")
        run = _json(reply.body)
        if run.get("status") == "failed":
            count(f"failed: {(run.get('error') or {}).get('message', '?')[:60]}")
            return
        if run.get("status") != "completed":
            raise CheckFailed(f"run status {run.get('status')!r}")
        if expected is not None:
            check_run(run, expected[0])
        count("completed")

    async def client() -> None:
        conn = Connection(job["host"], job["port"])
        try:
            while tally.started < max_runs:
                tally.started += 1
                began = time.perf_counter()
                try:
                    await asyncio.wait_for(one(conn), job["timeout"])
                except (CheckFailed, HTTPError, asyncio.TimeoutError, OSError) as exc:
                    tally.fail(f"{type(exc).__name__}: {exc}")
                    conn.close()
                    continue
                tally.latencies.append(time.perf_counter() - began)
        finally:
            conn.close()

    await asyncio.gather(*(client() for _ in range(int(job["concurrency"]))))
    elapsed = time.perf_counter() - start
    return {
        "ok": len(tally.latencies),
        "failures": tally.failures,
        "errors": tally.errors,
        "elapsed": elapsed,
        "rate": len(tally.latencies) / elapsed if elapsed else 0.0,
        "p50_ms": _ms(_percentile(tally.latencies, 0.50)),
        "request_bytes": len(body),
        "outcomes": outcomes,
    }


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job on a fresh event loop (uvloop when installed, as the servers use)."""
    runner = {"stream": _stream, "a2a-stream": _stream, "limits": _limits}.get(job["kind"], _load)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(runner(job))
    return uvloop.run(runner(job))


def main() -> None:
    job = json.load(sys.stdin)
    if job.get("cpus"):
        os.sched_setaffinity(0, set(job["cpus"]))
    json.dump(run_job(job), sys.stdout)


if __name__ == "__main__":
    main()
