"""build_service: the :class:`ACPService` an adapter makes, its arguments checked in the adapter's name.

Every adapter takes the service's arguments (registry, store, settings, ``authorize``, executor) and
hooks of its own (``owner``; Django's ``guard``). A mistake in any of them must name the constructor
the host wrote (``ACPMiddleware(store=...) needs a Store``), not the service made inside it: the
checks run here under the adapter's name, then the service is made (whose own checks, under
``ACPService``, then pass).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from .agents import AgentRegistry
from .arguments import check_service_arguments
from .executors import Executor
from .service import ACPService, Authorize
from .settings import Settings
from .store import Store

__all__ = ["build_service"]


def build_service(
    who: str,
    registry: AgentRegistry,
    *,
    store: Store | None = None,
    settings: Settings | None = None,
    authorize: Authorize | None = None,
    executor: Executor | None = None,
    sync_agent_context: Callable[[], AbstractContextManager[Any]] | None = None,
    **hooks: object,
) -> ACPService:
    """The service for the constructor named ``who``.

    Raises ``TypeError`` naming ``who``, what it needs and what it got, for an argument of the wrong
    kind: the service's, then the adapter's own ``hooks`` (functions or ``None``, checked only), then
    ``authorize``. ``sync_agent_context`` is :class:`ACPService`'s (the adapter supplies it, not the host).
    """
    check_service_arguments(
        who, registry, store=store, settings=settings, executor=executor, **hooks, authorize=authorize
    )
    return ACPService(
        registry,
        store=store,
        settings=settings,
        sync_agent_context=sync_agent_context,
        authorize=authorize,
        executor=executor,
    )
