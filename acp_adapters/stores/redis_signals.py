"""One pub/sub connection per process that wakes the local waiters of cancel and resume signals.

Rules this module keeps:

* The signal itself lives in a per-run Redis list (sent before anyone listens, it waits there); the
  pub/sub message only says "look at run X". Whatever the listener misses (it was reconnecting, the
  connection died silently) costs latency, never a signal: after every (re)subscription it wakes
  every local waiter, and it wakes them all every ``fallback_poll`` seconds anyway.
* However many runs await here, they hold no Redis connection: only this listener does.
* Closing stops it even if a library swallows the task's cancellation (see ``redis.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import anyio
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

__all__ = ["SignalListener"]

logger = logging.getLogger("acp_adapters.stores.redis")


class SignalListener:
    """Subscribes to ``channel`` and sets the local wake-up events of the run ids it hears."""

    def __init__(self, client: Redis, channel: str, *, timeout: float, fallback_poll: float = 15.0) -> None:
        self._client = client
        self._channel = channel
        self._timeout = timeout
        self.fallback_poll = fallback_poll
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @contextlib.contextmanager
    def watch(self, run_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever a signal to ``run_id`` may have arrived, while the block lasts."""
        self.ensure_running()
        woken = asyncio.Event()
        self._waiters.setdefault(run_id, set()).add(woken)
        try:
            yield woken
        finally:
            waiters = self._waiters.get(run_id)
            if waiters is not None:
                waiters.discard(woken)
                if not waiters:
                    del self._waiters[run_id]

    def ensure_running(self) -> None:
        """Start listening (again, should the listener have died of an unexpected error)."""
        if (self._task is None or self._task.done()) and not self._closing:
            self._task = asyncio.get_running_loop().create_task(self._listen(), name="acp-redis-signals")

    async def close(self) -> None:
        """Stop listening."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # The loop also checks ``_closing`` every second, should the cancel be swallowed.
            await asyncio.wait({task}, timeout=2 * self._timeout + 1)

    def _wake(self, run_id: str | None = None) -> None:
        groups = self._waiters.values() if run_id is None else [self._waiters.get(run_id, set())]
        for waiters in groups:
            for woken in waiters:
                woken.set()

    async def _listen(self) -> None:
        backoff = 0.1
        while not self._closing:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                with anyio.fail_after(self._timeout):
                    await pubsub.subscribe(self._channel)
                self._wake()  # a signal sent while we were not subscribed is in its list
                backoff = 0.1
                await self._dispatch(pubsub)
            except (RedisError, OSError) as exc:  # OSError: the deadline's TimeoutError too
                if self._closing:
                    return
                logger.warning("redis signal listener disconnected (%s); retrying in %.1f s", exc, backoff)
                self._wake()
                await anyio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                with contextlib.suppress(Exception), anyio.move_on_after(self._timeout, shield=True):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _dispatch(self, pubsub: PubSub) -> None:
        last_poll = time.monotonic()
        while not self._closing:
            message = await pubsub.get_message(timeout=1.0)
            if message is not None and message["type"] == "message":
                self._wake(message["data"].decode())
            elif time.monotonic() - last_poll >= self.fallback_poll:
                last_poll = time.monotonic()
                self._wake()
