"""An agent's A2A card, made from its ACP manifest.

Rules this module keeps:

* Every agent of the registry is an A2A agent: its card declares one URL, ``{a2a mount}/{agent}``,
  for JSON-RPC 1.0, HTTP+JSON 1.0 and JSON-RPC 0.3, and carries the 0.3 fields (``url``,
  ``preferredTransport``, ``protocolVersion``) as a2a-sdk's own server does.
* Capabilities say what is true: streaming yes; push notifications no (this server never calls a URL
  a client names, see docs/a2a.md); no extended card.
* Skills: one per capability the manifest's metadata lists (``{"name", "description"}``), else one
  for the agent; tags from the metadata's tags, else the agent's name (A2A requires some).
"""

from __future__ import annotations

from acp_adapters.core.agents import AgentDefinition

from .models import AgentCapabilities, AgentCard, AgentInterface, AgentSkill

__all__ = ["HTTP_JSON", "JSONRPC", "agent_card"]

JSONRPC = "JSONRPC"
HTTP_JSON = "HTTP+JSON"


def agent_card(agent: AgentDefinition, url: str) -> AgentCard:
    """The card of ``agent``, served at ``url`` (``{a2a mount}/{agent name}``, absolute)."""
    manifest = agent.manifest
    metadata = manifest.metadata
    tags = list(metadata.tags or []) or [manifest.name]
    description = manifest.description or manifest.name
    skills = [
        AgentSkill(
            id=str(capability.get("name") or f"skill-{index}"),
            name=str(capability.get("name") or manifest.name),
            description=str(capability.get("description") or description),
            tags=tags,
        )
        for index, capability in enumerate(metadata.capabilities or [])
    ] or [AgentSkill(id=manifest.name, name=manifest.name, description=description, tags=tags)]
    extra = metadata.model_extra or {}
    version = extra.get("version")
    return AgentCard(
        name=manifest.name,
        description=description,
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding=JSONRPC, protocol_version="1.0"),
            AgentInterface(url=url, protocol_binding=HTTP_JSON, protocol_version="1.0"),
            AgentInterface(url=url, protocol_binding=JSONRPC, protocol_version="0.3"),
        ],
        version=version if isinstance(version, str) and version else "1.0.0",
        capabilities=AgentCapabilities(streaming=True, push_notifications=False, extended_agent_card=False),
        default_input_modes=list(manifest.input_content_types),
        default_output_modes=list(manifest.output_content_types),
        skills=skills,
        url=url,
        preferred_transport=JSONRPC,
        protocol_version="0.3.0",
    )
