"""The ACP wire models (pydantic v2), for agents and hosts: ``from acp_adapters.models import Message``."""

from .core.models import *  # noqa: F403
from .core.models import __all__  # noqa: F401
