"""Django integration of acp-adapters: ``path("acp/", include("acp_adapters.django.urls"))``.

See docs/django.md.
"""
