"""The default ACP mount alone, for the tests that run Django in a subprocess with other apps."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [path("acp/", include("acp_adapters.django.urls"))]
