"""ACPService: the framework-neutral ACP server (routing, validation, errors, SSE).

(Interface fixed; implementation in progress.)
"""

from __future__ import annotations

from .agents import AgentRegistry
from .http import Request, Response, StreamResponse
from .settings import Settings
from .store import Store

__all__ = ["ACPService"]


class ACPService:
    """Serves the ACP API for a registry of agents, whatever the web framework.

    ``handle`` takes a neutral :class:`Request` and gives a :class:`Response` or a
    :class:`StreamResponse`. It must be called on the event loop that hosts the engine (the
    server's loop under ASGI, the bridge's loop under WSGI); the engine starts lazily on the first
    call, and ``aclose`` stops it.
    """

    def __init__(
        self, registry: AgentRegistry, *, store: Store | None = None, settings: Settings | None = None
    ) -> None:
        self.registry = registry
        self.settings = settings or Settings()
        self.store = store

    async def handle(self, request: Request) -> Response | StreamResponse:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError
