"""A2A (Agent2Agent) served from the same agents, the same core and the same engine as ACP.

:class:`A2AService` is framework-neutral (a neutral ``Request`` in, a ``Response`` or
``StreamResponse`` out, like :class:`~acp_adapters.core.service.ACPService`); the mounts are in the
adapters (:class:`acp_adapters.a2a.asgi.A2AApp`). See docs/a2a.md.
"""

from __future__ import annotations

from .service import A2AService

__all__ = ["A2AService"]
