"""WSGI entry point: ``gunicorn -w 1 -k gthread --threads 32 example_django.wsgi:application``."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_django.settings")

application = get_wsgi_application()
