"""How much of the machine other programs took while we measured (a shared 2-core box is noisy).

The harness waits for a quiet moment before each measurement, then compares the CPU time the whole
machine spent (``/proc/stat``) with what the servers under test and the load generator spent: the
difference is *foreign* load. A measurement taken under heavy foreign load is retried, and the
report says how much foreign load the figures it shows carried.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Meter", "busy_share", "wait_for_quiet"]

_TICK = os.sysconf("SC_CLK_TCK")


def _machine_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of every core since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return (total - idle) / _TICK, total / _TICK


def _tree_seconds(pids: Iterable[int]) -> float:
    """CPU seconds spent by these processes and their children (threads included)."""
    seconds = 0.0
    seen: set[int] = set()
    stack = list(pids)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            seconds += (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    stack += [int(p) for p in (task / "children").read_text().split()]
    return seconds


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def busy_share(interval: float = 0.5) -> float:
    """The share of the machine's CPU capacity in use over ``interval`` seconds (0 to 1)."""
    busy0, total0 = _machine_seconds()
    time.sleep(interval)
    busy1, total1 = _machine_seconds()
    return (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0


def wait_for_quiet(threshold: float, max_wait: float) -> float:
    """Wait (at most ``max_wait`` s) until the machine is under ``threshold`` busy; give the last share."""
    deadline = time.monotonic() + max_wait
    share = busy_share()
    while share > threshold and time.monotonic() < deadline:
        share = busy_share()
    return share


@dataclass
class Meter:
    """Measures foreign CPU load between :meth:`start` and :meth:`stop`.

    ``ours`` are the pids of the servers under test (their workers and threads are counted with
    them); the load generators are this process's children and are counted by ``getrusage``.
    """

    ours: list[int]

    def start(self) -> None:
        self._machine = _machine_seconds()
        self._ours = _tree_seconds(self.ours) + _children_seconds()
        self._wall = time.monotonic()

    def stop(self) -> float:
        """The foreign load while measuring, as a share of the whole machine's capacity (0 to 1)."""
        busy1, total1 = _machine_seconds()
        ours = _tree_seconds(self.ours) + _children_seconds() - self._ours
        busy, total = busy1 - self._machine[0], total1 - self._machine[1]
        return max(0.0, (busy - ours) / total) if total > 0 else 0.0
