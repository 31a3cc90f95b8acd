"""The Django floor under WSGI: ``gunicorn -k gthread --threads 32 bench.floors.django_wsgi:application``."""

from __future__ import annotations

from bench.floors import django_app

django_app.configure(__name__)

from django.core.wsgi import get_wsgi_application  # noqa: E402 - needs the settings above

urlpatterns = django_app.urls(asynchronous=False)
application = get_wsgi_application()
