"""Settings of the example Django project kept in PostgreSQL, for the ``django-gunicorn-postgres`` deployment.

``example_django.settings`` with its ``default`` database at ``ACP_DEPLOY_DATABASE_URL`` (a database the
deployment creates and drops) and the Django database store. ``ACP_LEASE_TTL`` shortens the leases for
the fault tests (the example reads every ``ACP_<SETTING>`` variable); ``ACP_WRITE_BEHIND=0`` turns the
store's write-behind off.
"""

from __future__ import annotations

import functools
import os

from acp_adapters.django.db.store import DjangoStore
from example_django.settings import *  # noqa: F403
from example_django.settings import ACP_ADAPTERS
from tests.django_store.settings import postgres_database

DATABASES = {"default": postgres_database(os.environ["ACP_DEPLOY_DATABASE_URL"])}

ACP_ADAPTERS = {
    **ACP_ADAPTERS,
    "STORE": functools.partial(DjangoStore, write_behind=os.environ.get("ACP_WRITE_BEHIND", "1") == "1"),
}
