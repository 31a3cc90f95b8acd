"""This process's id and name, known without a system call each time they are asked (``os.getpid()``
is one, ``socket.gethostname()`` another).

The hot paths of the shared stores ask on every command whether they still run in the process and on
the event loop that made their connections (a fork or a new loop makes new ones): the answer is kept
here and renewed in a forked child.
"""

from __future__ import annotations

import functools
import os
import socket

__all__ = ["current_pid", "worker_name"]

_pid = os.getpid()


def current_pid() -> int:
    """``os.getpid()``, kept (a forked child renews it)."""
    return _pid


def worker_name() -> str:
    """This process, as a shared store names the worker executing a run: ``host:pid``."""
    return _worker_name(_pid)


@functools.lru_cache(maxsize=4)
def _worker_name(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}"


def _forked() -> None:
    global _pid
    _pid = os.getpid()


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_forked)
