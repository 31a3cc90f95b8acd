"""Django integration of acp-adapters (see docs/django.md).

Add ``"acp_adapters.django"`` to ``INSTALLED_APPS``, name your agents in ``settings.ACP_ADAPTERS``
and mount them with ``path("acp/", include("acp_adapters.django.urls"))``; or mount any number of
:class:`ACPSite` objects with ``path("private-acp/", ACPSite(registry, guard=login_required).urls)``.
"""

from __future__ import annotations

from .auth import AuthenticationRequired, PermissionRequired, login_required, permission_required
from .views import ACPSite, site

__all__ = [
    "ACPSite",
    "AuthenticationRequired",
    "PermissionRequired",
    "login_required",
    "permission_required",
    "site",
]
