"""Checks of the arguments every adapter's constructor takes, made where the host writes them.

A registry, store or settings of the wrong kind would otherwise be accepted and fail at the first
request, far from the line to fix. Each check raises ``TypeError`` naming the constructor, what it
needs (with the line that makes one) and what it got.
"""

from __future__ import annotations

import inspect
from typing import Any

from .agents import AgentRegistry
from .executors import Executor
from .settings import Settings
from .store import Store

__all__ = [
    "check_callable",
    "check_executor",
    "check_prefix",
    "check_registry",
    "check_service_arguments",
    "check_settings",
    "check_store",
    "check_wrapped_app",
]

_MAKE_A_REGISTRY = "agents = AgentRegistry(); @agents.agent() def echo(input): ..."


def _kind(value: object) -> str:
    if value is None:
        return "None"
    if inspect.ismodule(value):
        return f"the module {value.__name__}"
    cls = type(value)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def check_registry(who: str, registry: object) -> None:
    """``registry`` must be an :class:`AgentRegistry`."""
    if isinstance(registry, AgentRegistry):
        return
    hint = ""
    if inspect.ismodule(registry):
        names = [name for name, value in vars(registry).items() if isinstance(value, AgentRegistry)]
        if names:
            hint = f": pass the registry in it, {registry.__name__}.{names[0]}"
    elif isinstance(registry, (list, tuple, set, dict)) or callable(registry):
        hint = ": register agents on a registry with its decorator, and pass the registry"
    raise TypeError(f"{who} needs an AgentRegistry ({_MAKE_A_REGISTRY}), not {_kind(registry)}{hint}")


def check_store(who: str, store: object) -> None:
    """``store`` must be ``None`` or a :class:`Store`."""
    if store is None or isinstance(store, Store):
        return
    hint = ": for a URL, store=store_from_url(url) (acp_adapters.stores)" if isinstance(store, str) else ""
    raise TypeError(
        f"{who}(store=...) needs a Store (MemoryStore(), RedisStore(...), store_from_url(url)) or None, "
        f"not {_kind(store)}{hint}"
    )


def check_settings(who: str, settings: object) -> None:
    """``settings`` must be ``None`` or a :class:`Settings`."""
    if settings is None or isinstance(settings, Settings):
        return
    hint = ": write Settings(**values) or Settings.from_mapping(values)" if isinstance(settings, dict) else ""
    raise TypeError(f"{who}(settings=...) needs a Settings or None, not {_kind(settings)}{hint}")


def check_callable(who: str, name: str, value: object) -> None:
    """A hook (``owner``, ``authorize``, ``guard``) must be ``None`` or callable."""
    if value is None or callable(value):
        return
    raise TypeError(f"{who}({name}=...) needs a function or None, not {_kind(value)}")


def check_wrapped_app(who: str, app: object, kind: str) -> None:
    """The app a middleware wraps (``kind``: ASGI or WSGI) must be callable, and come first."""
    if isinstance(app, AgentRegistry):
        raise TypeError(f"{who}(app, registry): the {kind} app it wraps comes first, then the registry")
    if not callable(app):
        raise TypeError(f"{who} wraps an {kind} app, {who}(app, registry), not {_kind(app)}")


def check_prefix(who: str, prefix: object) -> None:
    """A mount's URL prefix must be a string (``"/acp"``)."""
    if not isinstance(prefix, str):
        raise TypeError(f"{who}(prefix=...) needs a URL path such as '/acp', not {_kind(prefix)}")


def check_executor(who: str, executor: object) -> None:
    """``executor`` must be ``None`` or an :class:`~acp_adapters.core.executors.Executor`."""
    if executor is None or isinstance(executor, Executor):
        return
    raise TypeError(
        f"{who}(executor=...) needs an Executor (CeleryExecutor(celery_app) from acp_adapters.celery) "
        f"or None, not {_kind(executor)}"
    )


def check_service_arguments(
    who: str,
    registry: object,
    *,
    store: object = None,
    settings: object = None,
    executor: object = None,
    **hooks: Any,
) -> None:
    """Check what a constructor hands to the service: the registry, the store, the settings, the
    executor, hooks."""
    check_registry(who, registry)
    check_store(who, store)
    check_settings(who, settings)
    check_executor(who, executor)
    for name, value in hooks.items():
        check_callable(who, name, value)
