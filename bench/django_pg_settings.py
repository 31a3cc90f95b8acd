"""Settings of the Django example kept in PostgreSQL, for the ``django-postgres`` deployment.

``example_django.settings`` with its ``default`` database at ``BENCH_DATABASE_URL`` (a scratch
database that :func:`bench.setups.django_postgres` creates, migrates and drops) and the Django
database store.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from example_django.settings import *  # noqa: F403
from example_django.settings import ACP_ADAPTERS

_URL = urlsplit(os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _URL.path.lstrip("/"),
        "USER": _URL.username or "postgres",
        "PASSWORD": _URL.password or "",
        "HOST": _URL.hostname or "127.0.0.1",
        "PORT": str(_URL.port or 5432),
        "CONN_MAX_AGE": 60,  # type: ignore[dict-item]  # the star import typed DATABASES as all-str
    }
}

ACP_ADAPTERS = {**ACP_ADAPTERS, "STORE": "acp_adapters.django.store.DjangoStore"}
