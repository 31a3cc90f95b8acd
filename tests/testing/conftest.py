"""Helpers of the tests of testing support: a time limit for anything that could hang."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")

#: Seconds any one step may take before the test fails (instead of hanging CI).
LIMIT = 20.0


def within(seconds: float, step: Callable[[], T]) -> T:
    """``step()``, run in a daemon thread; fails the test if it takes longer than ``seconds``."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = step()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="bounded-step", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"hung: no answer within {seconds} s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]  # always a BaseException
    return outcome["value"]  # type: ignore[return-value]  # what step() returned
