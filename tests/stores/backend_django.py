"""The Django database store in the conformance suite: on SQLite and on PostgreSQL.

Each test runs as a pytest-django transactional test on the store's own alias (see
``tests/django_store/settings.py``): the tables are emptied after it. Each ``await stores.open()`` is a
new :class:`~acp_adapters.django.db.store.DjangoStore` with its own threads and connections, as another
worker process would have.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import pytest

from acp_adapters.core.store import Store
from tests.deployments.base import require_service
from tests.django_store import settings as test_settings
from tests.stores.backends import StoreBackend, StoreScope

test_settings.configure()


class _DjangoScope(StoreScope):
    def __init__(self, alias: str) -> None:
        super().__init__()
        self.alias = alias

    async def new_store(self, **options: Any) -> Store:
        from acp_adapters.django.db.store import DjangoStore

        return DjangoStore(self.alias, **options)


class DjangoBackend(StoreBackend):
    def __init__(self, name: str, alias: str, marks: tuple[Any, ...]) -> None:
        self.name = name
        self.alias = alias
        self.marks = marks

    def check(self) -> None:
        if self.alias == test_settings.POSTGRES:
            parts = urlsplit(test_settings.DATABASE_URL)
            where = f"PostgreSQL ({test_settings.DATABASE_URL}, from DATABASE_URL)"
            require_service(parts.hostname or "127.0.0.1", parts.port or 5432, where)

    def open_scope(self) -> StoreScope:
        return _DjangoScope(self.alias)


def _db(alias: str) -> Any:
    return pytest.mark.django_db(transaction=True, databases=[alias])


# Without a server the PostgreSQL backend carries no database mark (pytest-django would try to create its
# test database for the whole session); check() then skips, or fails under ACP_REQUIRE_SERVICES.
_POSTGRES_MARKS = (pytest.mark.django, pytest.mark.postgres) + (
    (_db(test_settings.POSTGRES),) if test_settings.POSTGRES_AVAILABLE else ()
)

BACKENDS: list[StoreBackend] = [
    DjangoBackend("django-sqlite", test_settings.SQLITE, (pytest.mark.django, _db(test_settings.SQLITE))),
    DjangoBackend("django-postgres", test_settings.POSTGRES, _POSTGRES_MARKS),
]

__all__ = ["BACKENDS", "DjangoBackend"]
del os
