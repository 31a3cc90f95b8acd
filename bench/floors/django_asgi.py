"""The Django floor under ASGI: ``uvicorn bench.floors.django_asgi:application``."""

from __future__ import annotations

from bench.floors import django_app

django_app.configure(__name__)

from django.core.asgi import get_asgi_application  # noqa: E402 - needs the settings above

urlpatterns = django_app.urls(asynchronous=True)
application = get_asgi_application()
