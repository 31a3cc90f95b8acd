"""A Flask app for the WSGI-specific tests: the demo agents, a few agents that block, and a probe of the
server's insides (threads, pump tasks) at ``/probe``.

Served by gunicorn (``tests.flask.app:app``) in ``tests/flask/conftest.py``, and used in process.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from flask import Flask, current_app, g, jsonify

from acp_adapters import Context
from acp_adapters.bridge import _LOOP
from acp_adapters.flask import ACP
from acp_adapters.models import Message
from example_agents import DEMO_SETTINGS, demo_registry

#: Sync agents currently inside their function (to see that cancel frees their threads).
busy = {"blocker": 0}
_busy_lock = threading.Lock()


def registry_for_tests() -> Any:
    agents = demo_registry()

    @agents.agent()
    async def ticker(input: list[Message], context: Context) -> AsyncIterator[str]:
        """Yields a part every 50 ms, N times (N from the input, default 40)."""
        try:
            count = int(input[-1].text.strip())
        except ValueError:
            count = 40
        for i in range(count):
            await asyncio.sleep(0.05)
            yield f"tick {i} "

    @agents.agent()
    def sleeper(input: list[Message], context: Context) -> str:
        """Sleeps half a second in its thread, then answers (a plain function)."""
        time.sleep(0.5)
        return f"slept in {threading.current_thread().name}"

    @agents.agent()
    def blocker(input: list[Message], context: Context) -> str:
        """Blocks its thread until the run is cancelled (at most 30 s)."""
        with _busy_lock:
            busy["blocker"] += 1
        try:
            cancelled = context.cancel_event.wait(30)
        finally:
            with _busy_lock:
                busy["blocker"] -= 1
        return "cancelled" if cancelled else "timed out"

    @agents.agent()
    def configured(input: list[Message], context: Context) -> str:
        """Answers the app's GREETING config (reads current_app in a plain function)."""
        return str(current_app.config["GREETING"])

    @agents.agent(name="configured-gen")
    def configured_gen(input: list[Message], context: Context) -> Iterator[str]:
        """Yields current_app's name and keeps a value on ``g`` across its yields (a sync generator)."""
        g.seen = current_app.name
        yield str(current_app.config["GREETING"])
        yield f"g kept {g.seen}"

    return agents


def count_pumps() -> int:
    """How many stream pumps run on the bridge's loop (call it on the loop)."""
    return sum(1 for task in asyncio.all_tasks() if _runs_pump(task))


def _runs_pump(task: asyncio.Task[Any]) -> bool:
    """Whether the task runs a stream's pump (the portal wraps it: follow the chain of awaits)."""
    coro: Any = task.get_coro()
    while coro is not None:
        if getattr(coro, "__qualname__", "") == "SyncStreamBody._run_pump":
            return True
        coro = getattr(coro, "cr_await", None)
    return False


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["GREETING"] = "hello from the app config"
    ACP(app, registry_for_tests(), settings=DEMO_SETTINGS)

    @app.get("/probe")
    def probe() -> Any:
        portal = _LOOP.running_portal()

        return jsonify(
            threads=threading.active_count(),
            thread_names=sorted(t.name for t in threading.enumerate()),
            pumps=portal.call(count_pumps) if portal is not None else 0,
            blockers=busy["blocker"],
        )

    return app


app = create_app()
