"""Django integration of acp-adapters (see docs/django.md).

Add ``"acp_adapters.django"`` to ``INSTALLED_APPS``, name your agents in ``settings.ACP_ADAPTERS``
and mount them with ``path("acp/", include("acp_adapters.django.urls"))``; or mount any number of
:class:`ACPSite` objects with ``path("private-acp/", ACPSite(registry, guard=login_required).urls)``.
Under ASGI, wrap the application with :func:`asgi_body_limit` so that a body over the limit is
refused before Django reads it.
"""

from __future__ import annotations

try:
    import asgiref  # noqa: F401
    import django  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        f'acp_adapters.django needs Django ({exc}): pip install "acp-adapters[django]"'
    ) from exc

from .asgi import asgi_body_limit
from .auth import AuthenticationRequired, PermissionRequired, login_required, permission_required
from .views import ACPSite, site

__all__ = [
    "ACPSite",
    "AuthenticationRequired",
    "PermissionRequired",
    "asgi_body_limit",
    "login_required",
    "permission_required",
    "site",
]
