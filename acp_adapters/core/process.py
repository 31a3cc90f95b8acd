"""This process's id, known without a system call each time it is asked (``os.getpid()`` is one).

The hot paths of the shared stores ask on every command whether they still run in the process and on
the event loop that made their connections (a fork or a new loop makes new ones): the answer is kept
here and renewed in a forked child.
"""

from __future__ import annotations

import os

__all__ = ["current_pid"]

_pid = os.getpid()


def current_pid() -> int:
    """``os.getpid()``, kept (a forked child renews it)."""
    return _pid


def _forked() -> None:
    global _pid
    _pid = os.getpid()


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_forked)
