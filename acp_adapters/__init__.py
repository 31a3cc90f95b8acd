"""acp-adapters: serve AI agents over the Agent Communication Protocol from any Python web app.

Declare agents on an :class:`AgentRegistry`, then mount them with the adapter of your framework:
``acp_adapters.asgi`` (Starlette, FastAPI, any ASGI app), ``acp_adapters.flask`` and
``acp_adapters.wsgi`` (Flask, any WSGI app) or ``acp_adapters.django``.
"""

from __future__ import annotations

from .core.agents import AgentRegistry
from .core.context import Context, SessionContext
from .core.errors import ACPError
from .core.service import ACPService
from .core.settings import Settings

__all__ = ["ACPError", "ACPService", "AgentRegistry", "Context", "SessionContext", "Settings", "__version__"]

__version__ = "0.1.0"
