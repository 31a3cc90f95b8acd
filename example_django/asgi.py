"""ASGI entry point: ``uvicorn example_django.asgi:application``."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from acp_adapters.django import asgi_body_limit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_django.settings")

# A body over the ACP limit is refused before Django reads it whole (see docs/django.md).
application = asgi_body_limit(get_asgi_application())
