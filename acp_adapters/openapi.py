"""The ACP API in a host's own OpenAPI document: FastAPI's ``/docs`` lists the mounted agents' paths.

The mount serves its own document at ``{prefix}/openapi.json`` in every framework (see
``docs/operations.md``); this module is for a host that has a document of its own.
"""

from __future__ import annotations

from typing import Any, Protocol

from .core.agents import AgentRegistry
from .core.openapi import acp_paths, with_acp_paths

__all__ = ["HasOpenAPI", "acp_paths", "add_acp_paths", "with_acp_paths"]


class HasOpenAPI(Protocol):
    """An app whose ``openapi()`` gives its OpenAPI document and whose docs call it (FastAPI's)."""

    def openapi(self) -> dict[str, Any]:
        """The app's OpenAPI document."""
        ...


def add_acp_paths(app: HasOpenAPI, registry: AgentRegistry, prefix: str = "/acp") -> None:
    """Add the ACP API of ``registry``, mounted at ``prefix``, to ``app``'s OpenAPI document.

    For FastAPI, after ``app.mount("/acp", ACPApp(agents))``::

        add_acp_paths(app, agents, prefix="/acp")

    ``/docs`` and ``/openapi.json`` then list the ACP operations under ``/acp`` (tagged ``ACP agent``,
    ``ACP run``...), with the registry's agent names as the ``agent_name`` enum; the ACP schemas are
    named with an ``ACP`` prefix (``ACPRun``) so none replaces one of the app's. The document is
    merged again whenever the app's own is made anew (FastAPI remakes it when its routes change).
    """
    original = app.openapi
    merged: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def openapi() -> dict[str, Any]:
        source = original()
        if not merged or merged[0][0] is not source:
            merged[:] = [(source, with_acp_paths(source, [agent.name for agent in registry], prefix))]
        return merged[0][1]

    # FastAPI's documented way of changing its document: the method replaced on the instance.
    setattr(app, "openapi", openapi)  # noqa: B010 - mypy would refuse assigning to a method
