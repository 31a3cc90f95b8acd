"""System checks of ``settings.ACP_ADAPTERS`` (ids ``acp_adapters.E001`` ...)."""

from __future__ import annotations
