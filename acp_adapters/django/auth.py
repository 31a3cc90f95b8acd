"""Who calls, and who may: the owner function and the guards of the Django adapter.

Django's own middleware (sessions, ``AuthenticationMiddleware``, a token middleware of the project)
runs before the ACP views; these functions only read what it left on the request. An owner scopes
runs and sessions to the caller; a guard stands in front of a whole mount and denies with an ACP
error (401 or 403, ``{code, message}``, rendered by the core with its CORS and ``WWW-Authenticate``
headers), never with a redirect to a login page.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest

# The guards' errors are the core's, so that the core renders them (CORS, WWW-Authenticate); they
# are re-exported here, where Django projects have always imported them from.
from acp_adapters.core.errors import AuthenticationRequired, PermissionRequired

from .conf import Guard

__all__ = [
    "AuthenticationRequired",
    "PermissionRequired",
    "auser_owner",
    "login_required",
    "permission_required",
    "user_owner",
]


def user_owner(request: HttpRequest) -> str | None:
    """The default owner: the authenticated user's primary key, else ``None`` (also without
    ``AuthenticationMiddleware``)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return str(user.pk)


async def auser_owner(request: HttpRequest) -> str | None:
    """:func:`user_owner` for async views: ``request.auser()`` (Django 5) does not block the loop."""
    auser = getattr(request, "auser", None)
    if auser is None:
        return await sync_to_async(user_owner)(request)
    user = await auser()
    return str(user.pk) if user.is_authenticated else None


def login_required(request: HttpRequest) -> None:
    """A guard that lets authenticated users through and answers 401 to anyone else."""
    if user_owner(request) is None:
        raise AuthenticationRequired("log in to use these agents")


def permission_required(*perms: str) -> Guard:
    """A guard that lets through authenticated users holding every permission in ``perms``
    (``"app_label.codename"``): 401 for anonymous callers, 403 for the others."""

    def guard(request: HttpRequest) -> None:
        login_required(request)
        user: Any = request.user  # any user model: has_perms comes from PermissionsMixin
        if not user.has_perms(perms):
            raise PermissionRequired(f"permission required: {', '.join(perms)}")

    return guard
