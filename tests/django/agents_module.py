"""A module that holds a registry, for the check of ``REGISTRY`` naming the module instead."""

from __future__ import annotations

from acp_adapters import AgentRegistry

registry = AgentRegistry()
