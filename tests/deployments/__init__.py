"""Every deployment the contract suite runs against (see :mod:`tests.deployments.base` for the mechanism).

:func:`load` imports each module ``tests/deployments/<name>.py`` (all but ``base``) and gathers its
``DEPLOYMENTS``. A module whose import fails because a third-party package is missing (its framework,
a store client) gives a :class:`Skipped` entry naming that package, so its tests show up as skipped
with the reason; any other import error, including a missing module of this repository, propagates and
fails the collection: a broken deployment must never pass for an absent one.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path

from .base import Deployment

__all__ = ["Skipped", "load"]

_OWN_PACKAGES = ("acp_adapters", "example_", "tests")


@dataclass(frozen=True)
class Skipped:
    """A deployment module that could not be imported because a third-party package is missing."""

    module: str
    reason: str


def _module_names() -> list[str]:
    here = [str(Path(__file__).parent)]
    return sorted(info.name for info in pkgutil.iter_modules(here) if info.name != "base")


def load() -> list[Deployment | Skipped]:
    """The deployments of every module, in module order, and a :class:`Skipped` per module not importable."""
    found: list[Deployment | Skipped] = []
    names: set[str] = set()
    for module_name in _module_names():
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if not missing or missing.startswith(_OWN_PACKAGES):
                raise
            reason = f"tests/deployments/{module_name}.py needs {missing!r}, not installed: {exc}"
            found.append(Skipped(module_name, reason))
            continue
        for deployment in module.DEPLOYMENTS:
            if deployment.name in names:
                raise ValueError(f"two deployments are named {deployment.name!r}")
            names.add(deployment.name)
            found.append(deployment)
    return found
