"""The Redis store's connection: one redis-py client per process and event loop, and its deadlines.

Rules this module keeps:

* Nothing connects before first use; a fork or a new event loop gets a new client (a connection must
  never be shared by two processes or two loops).
* Every command runs under a deadline of ``timeout`` seconds; Redis unreachable or too slow raises
  :class:`StoreUnavailable` (at once when the connection is refused). redis-py reconnects by itself
  when Redis is back.
* The deadline is ours, not redis-py's ``socket_timeout``: with that set, redis-py sends through
  ``asyncio.wait_for``, which on Python 3.11 and older may swallow the task's cancellation (a stream
  reader whose client left would never stop).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import anyio
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from acp_adapters.core.process import current_pid
from acp_adapters.core.store import StoreUnavailable

from . import scripts
from .notifier import Notifier

__all__ = ["RedisConnection", "milliseconds"]

# OSError covers the builtin TimeoutError that our deadline raises.
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError)


def milliseconds(seconds: float) -> int:
    """A TTL in whole milliseconds, at least one (``PEXPIRE 0`` would delete the key at once)."""
    return max(1, int(seconds * 1000))


class RedisConnection:
    """The client, the Lua scripts and the signal listener of one process, made on first use."""

    def __init__(
        self,
        url: str,
        *,
        channel_prefix: str,
        timeout: float,
        connect_timeout: float,
        retries: int,
        max_connections: int,
        options: dict[str, Any],
    ) -> None:
        self.url = url
        self.timeout = timeout
        self._channel_prefix = channel_prefix
        self._options: dict[str, Any] = {
            "max_connections": max_connections,
            "timeout": None,  # the pool's wait: our deadline bounds it
            "socket_timeout": None,  # see the module docstring: our deadline replaces it
            "socket_connect_timeout": connect_timeout,
            "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), retries),
            # A stale connection (Redis restarted) fails once and is retried on a new one. redis-py 6
            # retries a ConnectionError by itself; 5.x only when this list names it.
            "retry_on_error": [RedisConnectionError],
            **options,
            "decode_responses": False,
        }
        self._client: aioredis.Redis | None = None
        self._owner: tuple[int, asyncio.AbstractEventLoop] | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._notifier: Notifier | None = None
        self._channels = ""

    @property
    def client(self) -> aioredis.Redis:
        """The redis-py client of this process and event loop."""
        owner = (current_pid(), asyncio.get_running_loop())
        if self._client is None or self._owner != owner:
            # A blocking pool: under load a command waits (within its deadline) for a connection
            # rather than failing with "Too many connections".
            pool = aioredis.BlockingConnectionPool.from_url(self.url, **self._options)
            client = aioredis.Redis(connection_pool=pool)
            # Pub/sub channels are global to the server, whatever the database: name the database too.
            db = client.connection_pool.connection_kwargs.get("db", 0)
            self._channels = f"{self._channel_prefix}ch:{db}"
            self._notifier = Notifier(client, self._channels, timeout=self.timeout)
            self._scripts = {name: client.register_script(getattr(scripts, name)) for name in scripts.__all__}
            self._client, self._owner = client, owner
        return self._client

    @property
    def notifier(self) -> Notifier:
        """The process's notifier (started by its first waiter)."""
        self.client  # noqa: B018 - makes the notifier
        assert self._notifier is not None
        return self._notifier

    def channel(self, kind: str, run_id: object) -> str:
        """The pub/sub channel announcing a run's ``events``."""
        self.client  # noqa: B018 - names the channels after the database
        return f"{self._channels}:{kind}:{run_id}"

    @contextlib.contextmanager
    def reachable(self, timeout: float | None = None) -> Iterator[None]:
        """Run the block's commands under a deadline; Redis unreachable raises :class:`StoreUnavailable`."""
        try:
            with anyio.fail_after(self.timeout if timeout is None else timeout):
                yield
        except _UNREACHABLE as exc:
            raise StoreUnavailable(f"the store is unreachable: {str(exc) or type(exc).__name__}") from exc

    async def script(self, name: str, keys: Sequence[str], args: Sequence[Any], *, client: Any = None) -> Any:
        """Run one of :mod:`.scripts` (by its name there), on ``client`` (a pipeline) if given."""
        target = client if client is not None else self.client
        with self.reachable():
            return await self._scripts[name](keys=list(keys), args=list(args), client=target)

    async def warm(self) -> None:
        """Make now what the first commands would make: the client, a pooled connection, the scripts
        loaded in Redis (one pipeline: a Redis that is new, restarted or flushed has none, and each
        script's first call would fail and load it), and the notifier listening."""
        client = self.client
        with self.reachable():
            async with client.pipeline(transaction=False) as pipe:
                for script in self._scripts.values():
                    pipe.script_load(script.script)
                loaded = await pipe.execute(raise_on_error=False)
        await self.notifier.start()
        for answer in loaded:  # a Redis that refuses SCRIPT LOAD: each script loads at its first call
            if isinstance(answer, Exception):
                raise answer

    async def aclose(self) -> None:
        """Stop the notifier and close the connections of this process's client."""
        client, notifier = self._client, self._notifier
        self._client = self._notifier = self._owner = None
        if notifier is not None:
            await notifier.close()
        if client is not None:
            await client.aclose(close_connection_pool=True)
