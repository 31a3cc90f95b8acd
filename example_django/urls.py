"""``/`` is the project's own page, ``/acp/`` the demo agents, ``/acp-private/`` the guarded agent."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from acp_adapters.django import ACPSite
from example_agents import DEMO_SETTINGS

from . import private, views

#: The guarded mount (the demo agents' mount is the default site, configured in settings.py).
private_site = ACPSite(
    private.private_registry(),
    settings=DEMO_SETTINGS,
    owner=private.owner,
    guard=private.user_or_token,
    name="acp-private",
)

urlpatterns = [
    path("", views.home, name="home"),
    path("acp/", include("acp_adapters.django.urls")),
    path("acp-private/", private_site.urls),
    path("admin/", admin.site.urls),
]
