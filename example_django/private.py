"""An agent behind auth: ``whoami`` answers only logged-in users and holders of ``ACP_DEMO_TOKEN``.

It is served on a mount of its own, ``/acp-private/``, whose guard runs after Django's middleware
(sessions, ``AuthenticationMiddleware``) and before the core.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import AsyncIterator

from django.http import HttpRequest

from acp_adapters import AgentRegistry, Context
from acp_adapters.django import AuthenticationRequired
from acp_adapters.django.auth import user_owner
from acp_adapters.models import Message

#: Callers sending ``Authorization: Bearer <token>`` are let in as ``token`` (no token, no entry).
TOKEN_ENV = "ACP_DEMO_TOKEN"


def private_registry() -> AgentRegistry:
    """The agents of the guarded mount."""
    agents = AgentRegistry()

    @agents.agent()
    async def whoami(input: list[Message], context: Context) -> AsyncIterator[str]:
        """Says who the caller is: the user's primary key, or ``token``."""
        yield f"you are {context.owner}"

    return agents


def _token_holder(request: HttpRequest) -> bool:
    token = os.environ.get(TOKEN_ENV, "")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def user_or_token(request: HttpRequest) -> None:
    """The guard: a logged-in user, or the bearer of the demo token; anyone else gets 401."""
    if user_owner(request) is None and not _token_holder(request):
        raise AuthenticationRequired("log in, or send the demo token", challenge='Bearer realm="acp"')


def owner(request: HttpRequest) -> str | None:
    """Runs belong to the user, or to ``token`` for token holders."""
    return user_owner(request) or ("token" if _token_holder(request) else None)
