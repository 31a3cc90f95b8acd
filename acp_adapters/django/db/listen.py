"""PostgreSQL LISTEN/NOTIFY for the database store: other processes' appends and signals, as they commit.

Rules this module keeps:

* A writer notifies inside its own transaction (``pg_notify``), so the notification leaves at commit,
  never before the rows are visible; its payload is ``"<run id> <kind> <count>"``.
* One listening connection per process (psycopg's async connection, on the engine's loop), opened on
  first need and reopened after a failure; while it is down, the poll alone finds changes.
* The poll stays on as a safety net at a slow pace: a waiter never depends on a notification alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["CHANNEL", "PostgresListener", "notify_sql", "payload"]

logger = logging.getLogger("acp_adapters.django.store")

CHANNEL = "acp_adapters"

#: The statement a writer runs in its transaction (parameters: the payload).
notify_sql = f"SELECT pg_notify('{CHANNEL}', %s)"

#: Keys of Django's connection parameters that are not libpq's.
_NOT_LIBPQ = ("context", "cursor_factory", "prepare_threshold", "server_side_binding")


def payload(run_id: uuid.UUID, kind: int, count: int) -> str:
    return f"{run_id} {kind} {count}"


class PostgresListener:
    """Listens on :data:`CHANNEL` and calls ``on_change(run_id, kind, count)`` for each notification.

    ``on_state(connected)`` is told when the connection comes up or goes down.
    """

    def __init__(
        self,
        params: dict[str, Any],
        on_change: Callable[[uuid.UUID, int, int], None],
        on_state: Callable[[bool], None],
        *,
        retry_interval: float = 1.0,
    ) -> None:
        self.params = {key: value for key, value in params.items() if key not in _NOT_LIBPQ}
        self.on_change = on_change
        self.on_state = on_state
        self.retry_interval = retry_interval
        self._task: asyncio.Task[None] | None = None

    def ensure_started(self) -> None:
        """Start listening on the running loop, unless already listening there."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._listen(), name="acp-django-store-listen"
            )

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen(self) -> None:
        import psycopg

        while True:
            try:
                async with await psycopg.AsyncConnection.connect(**self.params, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.on_state(True)
                    async for notification in conn.notifies():
                        self._dispatch(notification.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("listening for PostgreSQL notifications failed (polling meanwhile): %s", exc)
            finally:
                self.on_state(False)
            await asyncio.sleep(self.retry_interval)

    def _dispatch(self, text: str) -> None:
        try:
            run_id, kind, count = text.split(" ")
            self.on_change(uuid.UUID(run_id), int(kind), int(count))
        except ValueError:
            logger.warning("ignored a malformed notification on %s: %r", CHANNEL, text)
