"""Limits on the runs executing in this process: active runs, the bytes of their logs, deadlines.

Rules this module keeps:

* Limits on active runs are checked before any work: a new run takes a slot (counted per process,
  agent and owner, O(1)) that it gives back when it ends. The bytes of the event logs of the runs
  executing here are summed the same way, against ``max_retained_bytes``.
* Run deadlines are kept in ticks: a run joins the set of its deadline's tick, and one loop timer per
  tick (not per run) expires the runs still in it (adding and removing a run is O(1)).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from .agents import AgentDefinition
from .errors import TooManyRequests
from .settings import Settings

__all__ = ["ActiveRuns", "Deadlines"]

#: Bytes of ``max_retained_bytes`` a new run needs left (its first events) to be let in.
_ROOM_TO_START = 1024

T = TypeVar("T", bound=Hashable)


class ActiveRuns:
    """The slots and log bytes of the runs executing in this process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._active = 0
        self._by_agent: dict[str, int] = {}
        self._by_owner: dict[str | None, int] = {}
        #: Bytes of event log the runs executing in this process hold together.
        self.log_bytes = 0
        # Past it, a new run would find no room to start: it is refused rather than failed at once.
        budget = settings.max_retained_bytes
        self._full_at = budget - min(_ROOM_TO_START, budget // 4)

    def clear(self) -> None:
        """Forget every run (the engine starts again, after a fork)."""
        self._active, self.log_bytes = 0, 0
        self._by_agent.clear()
        self._by_owner.clear()

    def check(self, agent: AgentDefinition, owner: str | None) -> None:
        """Raise :class:`TooManyRequests` if a run of ``agent`` by ``owner`` would be refused now;
        takes nothing."""
        self.take(agent, owner)
        self.give_back(agent, owner)

    def take(self, agent: AgentDefinition, owner: str | None) -> None:
        """Count a new run of ``agent`` by ``owner`` as active, or raise :class:`TooManyRequests`.

        Anonymous runs (owner ``None``) share one count for ``max_active_runs_per_owner``. A new run is
        refused too while the active runs' logs leave less than 1 KiB of ``max_retained_bytes``.
        Runs are counted by agent and by owner only where a cap asks for it.
        """
        settings = self.settings
        if self._active >= settings.max_active_runs:
            raise TooManyRequests(
                f"this server is executing {settings.max_active_runs} runs, its most: try again later",
                limit="max_active_runs",
                value=settings.max_active_runs,
            )
        per_agent = agent.max_active_runs
        of_agent = 0 if per_agent is None else self._by_agent.get(agent.manifest.name, 0)
        if per_agent is not None and of_agent >= per_agent:
            error = TooManyRequests(
                f"agent {agent.name} is executing {per_agent} runs, its most: try again later",
                limit="max_active_runs_per_agent",
                value=per_agent,
            )
            if error.error.data is not None:
                error.error.data["agent_name"] = agent.name
            raise error
        per_owner = settings.max_active_runs_per_owner
        of_owner = 0 if per_owner is None else self._by_owner.get(owner, 0)
        if per_owner is not None and of_owner >= per_owner:
            raise TooManyRequests(
                f"you have {per_owner} runs executing, the most one may have: try again later",
                limit="max_active_runs_per_owner",
                value=per_owner,
            )
        if self.log_bytes > self._full_at:
            raise TooManyRequests(
                f"the runs executing here hold more than {settings.max_retained_bytes} bytes of "
                "events: try again later",
                limit="max_retained_bytes",
                value=settings.max_retained_bytes,
            )
        self._active += 1
        if per_agent is not None:
            self._by_agent[agent.manifest.name] = of_agent + 1
        if per_owner is not None:
            self._by_owner[owner] = of_owner + 1

    def give_back(self, agent: AgentDefinition, owner: str | None) -> None:
        """The slot a run of ``agent`` by ``owner`` took."""
        self._active -= 1
        if agent.max_active_runs is not None:
            name = agent.manifest.name
            of_agent = self._by_agent.pop(name) - 1
            if of_agent:
                self._by_agent[name] = of_agent
        if self.settings.max_active_runs_per_owner is not None:
            of_owner = self._by_owner.pop(owner) - 1
            if of_owner:
                self._by_owner[owner] = of_owner

    def over_budget(self, run_bytes: int, size: int) -> str | None:
        """Which limit ``size`` more bytes of a run's log (now ``run_bytes``) would break, if any:
        ``"max_run_log_bytes"``, ``"max_retained_bytes"`` or ``None``."""
        if run_bytes + size > self.settings.max_run_log_bytes:
            return "max_run_log_bytes"
        if self.log_bytes + size > self.settings.max_retained_bytes:
            return "max_retained_bytes"
        return None


class Deadlines(Generic[T]):
    """Calls ``expire(item)`` for each item still watched ``seconds`` after it was watched, to within a
    tick (1 s, or a twentieth of ``seconds`` if that is shorter)."""

    def __init__(self, seconds: float, expire: Callable[[T], None]) -> None:
        self.seconds = seconds
        self._expire = expire
        self._tick = min(1.0, seconds / 20)
        self._due: dict[int, set[T]] = {}

    def clear(self) -> None:
        """Forget every item (the engine starts again, after a fork)."""
        self._due.clear()

    def watch(self, loop: asyncio.AbstractEventLoop, item: T) -> int:
        """Expire ``item`` ``seconds`` from now unless it is forgotten; returns its tick."""
        tick = math.ceil((loop.time() + self.seconds) / self._tick)
        due = self._due.get(tick)
        if due is None:
            due = self._due[tick] = set()
            loop.call_at(tick * self._tick, self._on_tick, tick)
        due.add(item)
        return tick

    def forget(self, item: T, tick: int) -> None:
        """Stop watching ``item`` (watched at ``tick``)."""
        due = self._due.get(tick)
        if due is not None:
            due.discard(item)

    def _on_tick(self, tick: int) -> None:
        for item in self._due.pop(tick, ()):
            self._expire(item)
