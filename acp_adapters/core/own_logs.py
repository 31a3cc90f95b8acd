"""The events of the runs this process executes, kept as written, so that its readers need not read
them back from a shared store.

The stream of the request that created a run is served by the process that executes it: every event it
reads was written a moment ago by that process. A shared store (Redis, the Django database) keeps the
run's events here too, once written, and serves its own readers from here.

Rules this module keeps:

* A log holds events the store has written, never queued ones: a reader here sees what a reader in
  another process could see, no sooner.
* A log is kept only while it holds every event of the run: each write reports the run's event count
  after it, and a count that does not follow on from the log (another process wrote to the run, a
  resume on another worker) drops the log; readers then read the store.
* Bounded: at most ``limit`` logs (the oldest go first: runs whose end this process never saw), each
  dropped when its run ends or another process takes it over (a reader still waiting holds the list,
  which has the run's last events; a later reader reads the store, which may have let the run go).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Sequence

from .store import EventRecord

__all__ = ["OwnLogs"]


class OwnLogs:
    """The written events of the runs this process executes, by run; see the module docstring."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._logs: OrderedDict[uuid.UUID, list[EventRecord]] = OrderedDict()

    def start(self, run_id: uuid.UUID, events: Sequence[EventRecord]) -> None:
        """The run was created here with ``events``, its whole log."""
        self._logs[run_id] = list(events)
        if len(self._logs) > self.limit:
            self._logs.popitem(last=False)

    def written(self, run_id: uuid.UUID, events: Sequence[EventRecord], count: int | None) -> None:
        """``events`` were just written, ending the run's log at ``count`` events (``None``: the run is
        gone): kept if the log held every event before them, else the log is dropped."""
        log = self._logs.get(run_id)
        if log is None:
            return
        if count is not None and count - len(events) == len(log):
            log.extend(events)
        else:
            del self._logs[run_id]

    def get(self, run_id: uuid.UUID) -> list[EventRecord] | None:
        """The run's log (every event written so far, growing as more are), or ``None``."""
        return self._logs.get(run_id)

    def forget(self, run_id: uuid.UUID) -> None:
        """The run ended, or no longer executes here."""
        self._logs.pop(run_id, None)

    def __len__(self) -> int:
        return len(self._logs)
