"""One pub/sub connection per process that wakes local waiters: readers of a run's events, and the
worker waiting for a run's signals.

Rules this module keeps:

* The data never travels by pub/sub: events are in the run's stream, signals in its list. A message on
  a run's channel only says "look again". Whatever the notifier misses (it was reconnecting, the
  connection died silently) costs latency, never data: after every (re)connection it wakes every
  waiter, and waiters look again on their own now and then.
* A waiter holds no Redis connection: however many runs are awaited or streamed here, this process
  has one pub/sub connection. It subscribes to a run's channel while someone here waits on it (and a
  little longer, so that a stream waiting again and again does not churn subscriptions).
* Rare messages (signals) go to every process on one "home" channel, keyed by run: the worker of a
  run waits for its signals without a subscription of its own (most runs never get one).
* A waiter knows when its subscription is live (the server confirmed it): after that, anything
  written to the run is announced to it, so looking once more then waiting misses nothing.
* Closing stops it even if a library swallows the task's cancellation (see ``.connection``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import anyio
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

__all__ = ["Notifier", "Watch"]

logger = logging.getLogger("acp_adapters.stores.redis")

#: How long a channel stays subscribed after its last waiter left.
_LINGER = 5.0


class _Channel:
    __slots__ = ("confirmed", "expected", "heard", "idle_since", "remote", "waiters")

    def __init__(self) -> None:
        self.waiters: set[asyncio.Event] = set()
        #: Whether a waiter needs the subscription (not only in-process wake-ups).
        self.remote = False
        #: Resolved when the server confirmed the subscription on the current connection.
        self.confirmed: asyncio.Future[None] | None = None
        self.idle_since: float | None = None
        #: A key on the home channel kept before its waiter comes (see :meth:`Notifier.expect`).
        self.expected = False
        #: Whether a message came for it.
        self.heard = False


class Watch:
    """A waiter (see :meth:`Notifier.watch`)."""

    def __init__(
        self, notifier: Notifier, channel: str | None, state: _Channel, *, local: bool = False
    ) -> None:
        self._notifier = notifier
        self._channel = channel
        self._state = state
        self._local = local
        self.woken = asyncio.Event()

    @property
    def live(self) -> bool:
        """Whether the subscription is live (the server confirmed it): what is announced on the channel
        from now on reaches this waiter."""
        confirmed = self._state.confirmed
        return confirmed is not None and confirmed.done()

    async def wait(self, seconds: float) -> None:
        """Return when a message came, or after ``seconds``; look at the data again then.

        While the subscription is not live (the notifier is reconnecting) this polls: it returns
        within half a second, and at once when the subscription has just become live.
        """
        confirmed = self._state.confirmed
        if not self._local and (confirmed is None or not confirmed.done()):
            if await self._notifier._subscribed(self._channel, self._state):
                return
            seconds = min(seconds, 0.5)
        with anyio.move_on_after(seconds):
            await self.woken.wait()
        self.woken.clear()


class Notifier:
    """Wakes the local waiters of pub/sub channels, over one connection of ``client``'s pool.

    ``home`` is always subscribed; a message on it names the key (a run id) whose waiters to wake.
    """

    def __init__(self, client: Redis, home: str, *, timeout: float) -> None:
        self._client = client
        self.home = home
        self._timeout = timeout
        self._home = _Channel()
        self._channels: dict[str, _Channel] = {}
        self._keyed: dict[str, _Channel] = {}
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @contextlib.asynccontextmanager
    async def watch(self, channel: str, *, local: bool = False) -> AsyncIterator[Watch]:
        """Wait on ``channel`` within the block: look at the data, then ``await watch.wait(...)``, repeat.

        ``local``: what the waiter waits for is written by this process, which calls :meth:`wake`;
        no subscription is needed (the waiter still looks again now and then on its own).
        """
        state = self._channels.get(channel)
        if state is None:
            state = self._channels[channel] = _Channel()
        state.remote = state.remote or not local
        async with self._waiting(None if local else channel, state, local=local) as watch:
            yield watch

    def wake(self, channel: str) -> None:
        """Wake this process's waiters on ``channel`` (something was written here)."""
        state = self._channels.get(channel)
        if state is not None:
            for woken in state.waiters:
                woken.set()

    def expect(self, key: str) -> object | None:
        """Keep track of the messages ``key`` on the home channel from now on, before its waiter comes
        (:meth:`watch_home`); returns a token of the home subscription if it is live now, else ``None``.

        :meth:`quiet` then tells the waiter whether it may skip its first look: nothing can have been
        announced for ``key`` that it did not hear.
        """
        self._ensure_running()
        state = self._keyed.get(key)
        if state is None:
            state = self._keyed[key] = _Channel()
        state.expected = True
        confirmed = self._home.confirmed
        return confirmed if confirmed is not None and confirmed.done() else None

    def quiet(self, key: str, token: object | None) -> bool:
        """Whether no message for ``key`` came since :meth:`expect` gave ``token``, the home subscription
        live all along (the same one)."""
        state = self._keyed.get(key)
        return token is not None and token is self._home.confirmed and state is not None and not state.heard

    def unexpect(self, key: str) -> None:
        """Stop keeping track of ``key`` (see :meth:`expect`), unless a waiter watches it."""
        state = self._keyed.get(key)
        if state is not None and not state.waiters:
            del self._keyed[key]

    @contextlib.asynccontextmanager
    async def watch_home(self, key: str) -> AsyncIterator[Watch]:
        """Like :meth:`watch`, for the messages ``key`` on the home channel."""
        state = self._keyed.get(key)
        if state is None:
            state = self._keyed[key] = _Channel()
        state.expected = False  # its waiter is here
        state.confirmed = self._home.confirmed
        async with self._waiting(None, state) as watch:
            yield watch

    @contextlib.asynccontextmanager
    async def _waiting(
        self, channel: str | None, state: _Channel, *, local: bool = False
    ) -> AsyncIterator[Watch]:
        self._ensure_running()
        watch = Watch(self, channel, state, local=local)
        state.waiters.add(watch.woken)
        state.idle_since = None
        try:
            if not local:
                await self._subscribed(channel, state)
            yield watch
        finally:
            state.waiters.discard(watch.woken)
            if not state.waiters:
                state.idle_since = time.monotonic()
                if channel is None and not local:
                    self._keyed = {k: v for k, v in self._keyed.items() if v.waiters or v.expected}

    async def _subscribed(self, channel: str | None, state: _Channel) -> bool:
        """Make the subscription live if it is not (``None``: the home channel's); whether it is live."""
        pubsub = self._pubsub
        if pubsub is None:
            return False  # the listener reconnects, resubscribes and wakes everyone
        if channel is None:
            state.confirmed = self._home.confirmed
        elif state.confirmed is None:
            state.confirmed = asyncio.get_running_loop().create_future()
            try:
                with anyio.fail_after(self._timeout):
                    await pubsub.subscribe(channel)
            except (RedisError, OSError):
                return False
        confirmed = state.confirmed
        if confirmed is None:
            return False
        with anyio.move_on_after(self._timeout):
            await asyncio.shield(confirmed)
        return confirmed.done()

    async def start(self) -> None:
        """Start listening now rather than for the first waiter, and wait until the home channel is
        subscribed (at most ``timeout`` seconds: Redis may be unreachable, the listener then goes on
        trying on its own)."""
        self._ensure_running()
        with anyio.move_on_after(self._timeout):
            while True:
                confirmed = self._home.confirmed
                if confirmed is not None and confirmed.done():
                    return
                if confirmed is None:
                    await asyncio.sleep(0.01)  # (the listener has not reached its subscribe yet)
                else:
                    await asyncio.wait({confirmed}, timeout=0.5)

    async def close(self) -> None:
        """Stop listening."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # The loop also checks ``_closing`` every second, should the cancel be swallowed.
            await asyncio.wait({task}, timeout=2 * self._timeout + 1)

    def _ensure_running(self) -> None:
        if (self._task is None or self._task.done()) and not self._closing:
            self._task = asyncio.get_running_loop().create_task(self._listen(), name="acp-redis-notifier")

    def _states(self) -> list[_Channel]:
        return [*self._channels.values(), *self._keyed.values()]

    def _wake_all(self) -> None:
        for state in self._states():
            for woken in state.waiters:
                woken.set()

    def _reset(self, live: bool) -> None:
        """New subscription futures for every channel (or none, while disconnected)."""
        loop = asyncio.get_running_loop()
        self._home.confirmed = loop.create_future() if live else None
        for state in self._channels.values():
            state.confirmed = loop.create_future() if live and state.remote else None
        for state in self._keyed.values():
            state.confirmed = self._home.confirmed

    async def _listen(self) -> None:
        backoff = 0.1
        while not self._closing:
            pubsub = self._client.pubsub()
            try:
                self._reset(live=True)
                with anyio.fail_after(self._timeout):
                    await pubsub.subscribe(
                        self.home, *(c for c, state in self._channels.items() if state.remote)
                    )
                self._pubsub = pubsub
                self._wake_all()  # whatever was written while we were not listening
                backoff = 0.1
                await self._dispatch(pubsub)
            except (RedisError, OSError) as exc:  # OSError: the deadline's TimeoutError too
                if self._closing:
                    return
                logger.warning("redis notifier disconnected (%s); reconnecting in %.1f s", exc, backoff)
                await anyio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                self._pubsub = None
                self._reset(live=False)
                self._wake_all()
                with contextlib.suppress(Exception), anyio.move_on_after(self._timeout, shield=True):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _dispatch(self, pubsub: PubSub) -> None:
        last_sweep = time.monotonic()
        while not self._closing:
            message: Any = await pubsub.get_message(timeout=1.0)
            if message is not None:
                self._deliver(message["type"], message["channel"].decode(), message["data"])
            if time.monotonic() - last_sweep >= 1.0:
                last_sweep = time.monotonic()
                await self._unsubscribe_idle(pubsub, last_sweep)

    def _deliver(self, kind: str, channel: str, data: Any) -> None:
        if channel == self.home:
            state = self._keyed.get(data.decode()) if kind == "message" else self._home
        else:
            state = self._channels.get(channel)
        if state is None:
            return
        if kind == "message":
            state.heard = True
            for woken in state.waiters:
                woken.set()
        elif kind == "subscribe" and state.confirmed is not None and not state.confirmed.done():
            state.confirmed.set_result(None)

    async def _unsubscribe_idle(self, pubsub: PubSub, now: float) -> None:
        idle = [
            channel
            for channel, state in self._channels.items()
            if not state.waiters and state.idle_since is not None and now - state.idle_since >= _LINGER
        ]
        subscribed = [channel for channel in idle if self._channels.pop(channel).remote]
        if subscribed:
            with anyio.fail_after(self._timeout):
                await pubsub.unsubscribe(*subscribed)
