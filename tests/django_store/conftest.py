"""Fixtures of the database-store tests: Django configured by ``settings.py``, a store per alias.

``alias`` runs a test once on SQLite and once on PostgreSQL (skipped without a server, failed instead
under ``ACP_REQUIRE_SERVICES``), as a pytest-django transactional test on that alias: the store's threads
see what the test writes, and the tables are emptied afterwards. ``make_store(**options)`` gives a new
:class:`~acp_adapters.django.db.store.DjangoStore` on the alias (one per simulated worker) and closes them all
at the end.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.django_store import settings as test_settings

test_settings.configure()

from acp_adapters.django.db.store import DjangoStore  # noqa: E402 - needs Django configured

StoreFactory = Callable[..., DjangoStore]


def _db(alias: str) -> Any:
    return pytest.mark.django_db(transaction=True, databases=[alias])


if test_settings.POSTGRES_AVAILABLE:
    _POSTGRES = pytest.param(
        test_settings.POSTGRES, id="postgres", marks=(pytest.mark.postgres, _db(test_settings.POSTGRES))
    )
elif os.environ.get("ACP_REQUIRE_SERVICES"):
    _POSTGRES = pytest.param(test_settings.POSTGRES, id="postgres", marks=pytest.mark.postgres)
else:
    _POSTGRES = pytest.param(
        test_settings.POSTGRES,
        id="postgres",
        marks=(
            pytest.mark.postgres,
            pytest.mark.skip(
                reason=f"{test_settings.POSTGRES_REASON}; set ACP_REQUIRE_SERVICES=1 to make this a failure"
            ),
        ),
    )


@pytest.fixture(
    params=[pytest.param(test_settings.SQLITE, id="sqlite", marks=_db(test_settings.SQLITE)), _POSTGRES]
)
def alias(request: pytest.FixtureRequest) -> str:
    """The database alias this test runs on."""
    if request.param == test_settings.POSTGRES and not test_settings.POSTGRES_AVAILABLE:
        pytest.fail(f"{test_settings.POSTGRES_REASON}, and ACP_REQUIRE_SERVICES is set", pytrace=False)
    return str(request.param)


@pytest.fixture(params=[_POSTGRES])
def postgres(request: pytest.FixtureRequest) -> str:
    """The PostgreSQL alias, for tests of what only a server does."""
    if not test_settings.POSTGRES_AVAILABLE:
        pytest.fail(f"{test_settings.POSTGRES_REASON}, and ACP_REQUIRE_SERVICES is set", pytrace=False)
    return str(request.param)


@pytest.fixture
async def make_store(alias: str) -> AsyncIterator[StoreFactory]:
    """Makes stores on ``alias`` (each one stands for a worker process); closes them at the end."""
    made: list[DjangoStore] = []

    def make(**options: Any) -> DjangoStore:
        store = DjangoStore(alias, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()
