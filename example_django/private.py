"""The mount behind auth, ``/acp-private/``: logged-in users, and holders of an ``ACP_DEMO_TOKENS`` token.

Its guard runs after Django's middleware (sessions, ``AuthenticationMiddleware``) and before the
core. A caller is its user (the user's primary key) when logged in, else the owner its
``Authorization: Bearer <token>`` maps to; anyone else gets 401 with ``WWW-Authenticate``. Runs,
sessions and resources there belong to that owner. The tokens are read once, when this module is
imported (a malformed ``ACP_DEMO_TOKENS`` stops the start with a ``ValueError``).
"""

from __future__ import annotations

from django.http import HttpRequest

from acp_adapters.core.errors import AuthenticationRequired
from acp_adapters.django.auth import user_owner
from example_agents import BEARER_CHALLENGE, demo_tokens

#: The tokens of ``ACP_DEMO_TOKENS``.
TOKENS = demo_tokens()


def owner(request: HttpRequest) -> str | None:
    """The user's primary key, else the owner of the bearer token, else ``None``."""
    return user_owner(request) or TOKENS.owner(request.headers.get("Authorization"))


def user_or_token(request: HttpRequest) -> None:
    """The guard: a logged-in user, or the bearer of a known token; anyone else gets 401."""
    if owner(request) is None:
        raise AuthenticationRequired("log in, or send a demo token", challenge=BEARER_CHALLENGE)
