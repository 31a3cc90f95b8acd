"""What a sync run costs without sockets: ``python -m bench.inprocess [--runs 4000] [--clients 16]``.

It drives, in this one process and on one uvloop, the same sync ``echo`` request through

* ``core``: :meth:`ACPService.handle` alone (the neutral core, no framework);
* ``starlette``: the Starlette example app (``example_starlette.app:app``), called as ASGI;
* ``floor``: the Starlette floor (``bench.floors.starlette_app:app``), called as ASGI;
* ``minimal``: the least any ACP server must do for a sync run, written as bare as Python allows
  (parse the request, make two ids, run the agent in a task of its own, keep its six events as
  hand-made JSON, answer the run): no store, no lifecycle checks, no cancel, no sessions. It is a
  lower bound for ``core``, not an alternative to it;

interleaved (A B C A B C ...), and prints the median microseconds per run with the min-max. With no
HTTP server and no load generator in the way, it shows what the adapter itself adds to what the
framework costs, and it is steady enough on a busy machine to compare two versions of the code
(``--ref`` of ``python -m bench`` does the same over HTTP).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["main"]

BODY = json.dumps(
    {"agent_name": "echo", "mode": "sync", "input": [{"role": "user", "parts": [{"content": "hello"}]}]}
).encode()
Call = Callable[[], Awaitable[None]]


def _core_call() -> Call:
    from acp_adapters.core.http import Request
    from acp_adapters.core.service import ACPService
    from example_agents import DEMO_SETTINGS, demo_registry

    service = ACPService(demo_registry(), settings=DEMO_SETTINGS)
    request = Request("POST", "/runs", "http://127.0.0.1:8000/acp", body=BODY)

    async def call() -> None:
        response = await service.handle(request)
        if response.status != 200 or b'"completed"' not in getattr(response, "body", b""):
            raise AssertionError(f"core answered {response.status}")

    return call


def _asgi_call(app: Callable[..., Awaitable[None]]) -> Call:
    headers = [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json")]
    headers.append((b"content-length", str(len(BODY)).encode()))

    async def call() -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/acp/runs",
            "raw_path": b"/acp/runs",
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        delivered = False
        sent: list[MutableMapping[str, Any]] = []

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                await asyncio.Event().wait()  # no disconnect: the answer comes first
            delivered = True
            return {"type": "http.request", "body": BODY, "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        if sent[0]["status"] != 200:
            raise AssertionError(f"the app answered {sent[0]['status']}")

    return call


def _minimal_call() -> Call:
    import os
    import uuid
    from collections.abc import AsyncIterator
    from datetime import datetime, timezone

    from acp_adapters.models import Message, RunCreateRequest

    logs: dict[uuid.UUID, list[bytes]] = {}

    def now() -> bytes:
        return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z").encode()

    async def echo(input: list[Message]) -> AsyncIterator[Message]:
        for message in input:
            yield message

    async def execute(
        run: bytes, log: list[bytes], input: list[Message], done: asyncio.Future[bytes]
    ) -> None:
        log.append(b'{"type":"run.in-progress","run":' + run + b'"status":"in-progress"}}')
        output = []
        async for message in echo(input):
            data = message.__pydantic_serializer__.to_json(message, exclude_none=True)
            output.append(data)
            log.append(b'{"type":"message.created","message":' + data + b"}")
            for part in message.parts:
                part_data = part.__pydantic_serializer__.to_json(part, exclude_none=True)
                log.append(b'{"type":"message.part","part":' + part_data + b"}")
            log.append(b'{"type":"message.completed","message":' + data + b"}")
        final = (
            run
            + b'"status":"completed","output":['
            + b",".join(output)
            + b'],"finished_at":"'
            + now()
            + b'"}'
        )
        log.append(b'{"type":"run.completed","run":' + final + b"}")
        done.set_result(final)

    async def call() -> None:
        request = RunCreateRequest.model_validate_json(BODY)
        run_id = uuid.UUID(bytes=os.urandom(16), version=4)
        session_id = uuid.UUID(bytes=os.urandom(16), version=4)
        run = b'{"agent_name":"echo","run_id":"%s","session_id":"%s","created_at":"%s",' % (
            str(run_id).encode(),
            str(session_id).encode(),
            now(),
        )
        log = logs[run_id] = [b'{"type":"run.created","run":' + run + b'"status":"created"}}']
        if len(logs) > 10_000:
            del logs[next(iter(logs))]
        done = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().create_task(execute(run, log, request.input, done))
        if b'"completed"' not in await done:
            raise AssertionError("the minimal run did not complete")

    return call


def _targets() -> dict[str, Call]:
    from bench.floors.starlette_app import app as floor
    from example_starlette.app import app as starlette

    return {
        "core": _core_call(),
        "starlette": _asgi_call(starlette),
        "floor": _asgi_call(floor),
        "minimal": _minimal_call(),
    }


async def _measure(call: Call, runs: int, clients: int) -> float:
    async def client(count: int) -> None:
        for _ in range(count):
            await call()

    start = time.perf_counter()
    await asyncio.gather(*(client(runs // clients) for _ in range(clients)))
    return (time.perf_counter() - start) / (runs // clients * clients) * 1e6


async def _run(runs: int, clients: int, reps: int) -> dict[str, list[float]]:
    targets = _targets()
    for call in targets.values():  # warm up
        await _measure(call, min(runs, 500), clients)
    figures: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(reps):
        for name, call in targets.items():
            figures[name].append(await _measure(call, runs, clients))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("--runs", type=int, default=4000, help="sync runs per measurement")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions")
    args = parser.parse_args(argv)
    try:
        import uvloop

        figures = uvloop.run(_run(args.runs, args.clients, args.reps))
    except ImportError:
        figures = asyncio.run(_run(args.runs, args.clients, args.reps))
    floor = statistics.median(figures["floor"])
    print(f"sync echo, {args.clients} clients, {args.runs} runs per measurement, medians of {args.reps}:")
    print("| path | us per run | min-max | x floor's time |")
    print("|---|---|---|---|")
    for name, values in figures.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.1f} | {min(values):.1f}-{max(values):.1f} | {median / floor:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
