"""``/`` is the project's own page, ``/acp/`` the demo agents, ``/acp-private/`` the guarded agents;
``/a2a/`` and ``/a2a-private/`` the same agents over A2A, each on its ACP mount's engine."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from acp_adapters.a2a.django import A2ASite
from acp_adapters.django import ACPSite
from acp_adapters.django.conf import conf
from acp_adapters.django.views import site
from example_agents import executor_from_env, private_registry, store_from_env

from . import private, views

# With ACP_STORE naming Redis, the guarded mount keeps its keys apart from the default site's; with a
# database store (ACP_STORE=django, or a project's own STORE) it shares the default site's tables,
# where owners keep runs apart.
_store = store_from_env("private") if conf.raw.get("STORE") == "example_agents.store_from_env" else None

#: The guarded mount (the demo agents' mount is the default site, configured in settings.py): the
#: demo agents and ``whoami``, with the project's ACP settings.
private_site = ACPSite(
    private_registry(),
    store=_store,  # settings left out: ACP_ADAPTERS' (read on first request, after the checks)
    owner=private.owner,
    guard=private.user_or_token,
    name="acp-private",
    executor=executor_from_env("acp-private"),
)

urlpatterns = [
    path("", views.home, name="home"),
    path("acp/", include("acp_adapters.django.urls")),
    path("acp-private/", private_site.urls),
    path("a2a/", A2ASite(site).urls),
    path("a2a-private/", A2ASite(private_site, acp_url="/acp-private", name="a2a-private").urls),
    path("admin/", admin.site.urls),
]
