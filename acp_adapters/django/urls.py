"""The default ACP mount, configured by ``settings.ACP_ADAPTERS``::

    urlpatterns = [path("acp/", include("acp_adapters.django.urls"))]

Every path under the prefix goes to the core (``reverse("acp:api", kwargs={"path": "runs"})``).
"""

from __future__ import annotations

from .views import site

app_name = "acp"
urlpatterns = site.urlpatterns
