"""Whether this worker process's ACP services had started before the request, read without starting
anything (the probe of the warm-up tests)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from acp_adapters.bridge import _LOOP
from acp_adapters.core.service import ACPService


def started(service: ACPService | None) -> bool:
    """Whether ``service``'s engine has started (``None``: no service made yet)."""
    if service is None:
        return False
    starting = service.engine._starting  # (private: the engine says nowhere else whether it started)
    return starting is not None and starting.done() and starting.exception() is None


def report(services: Sequence[ACPService | None]) -> dict[str, Any]:
    """The probe's answer: this process, its bridge loop, and whether every service has started."""
    return {
        "pid": os.getpid(),
        "loop_running": _LOOP.running() is not None,
        "engine_started": all(started(service) for service in services),
    }
