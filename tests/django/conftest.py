"""The example project in process, served the WSGI way (Django's ``Client``) or the ASGI way
(``AsyncClient`` on an event loop that lives as long as the test), for the Django-specific tests.

Django is configured by :mod:`tests.deployments.django` (imported by ``tests/conftest.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import django
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from django.db import connections

from tests.deployments.base import Target
from tests.deployments.django import HOST, DjangoAsyncContractClient, DjangoContractClient, example_sites

#: For the tests of the views under ``LoginRequiredMiddleware``, which Django 5.1 brought.
needs_login_required_middleware = pytest.mark.skipif(
    django.VERSION < (5, 1), reason="LoginRequiredMiddleware is new in Django 5.1"
)


class Served:
    """The example project served one way (``mode``: ``"wsgi"`` or ``"asgi"``)."""

    def __init__(self, mode: str, portal: BlockingPortal | None) -> None:
        self.mode = mode
        self.portal = portal

    def target(self, mount: str = "/acp", *, user: Any = None, **options: Any) -> Target:
        """A target for the mount at ``mount``; ``user`` is logged in, ``options`` go to the test client
        (``enforce_csrf_checks=True``)."""
        client: DjangoContractClient | DjangoAsyncContractClient
        if self.portal is None:
            client = DjangoContractClient(mount, user=user, **options)
        else:
            client = DjangoAsyncContractClient(self.portal, mount, user=user, **options)
        return Target(base_url=f"http://{HOST}{mount}", client=client, name=f"django-{self.mode}")

    def call(self, function: Any, *args: Any) -> Any:
        """Run ``function(*args)`` the way this mode runs code: on the portal's loop (a coroutine
        function) for ASGI, in this thread for WSGI."""
        if self.portal is None:
            return function(*args)
        return self.portal.call(function, *args)


@pytest.fixture(autouse=True)
def _close_database_connections(django_db_blocker: Any) -> Iterator[None]:
    """Close this thread's database connections after each test: a connection a database test left
    open would make the next response's close (``close_old_connections``) touch the blocked database."""
    yield
    with django_db_blocker.unblock():
        connections.close_all()


@contextlib.contextmanager
def serving(mode: str) -> Iterator[Served]:
    """The example project served ``mode``'s way; its ACP services start afresh and stop after."""
    sites = example_sites()
    for site in sites:
        site.close()
    if mode == "wsgi":
        try:
            yield Served("wsgi", None)
        finally:
            for site in sites:
                site.close()
        return
    with start_blocking_portal() as portal:
        try:
            yield Served("asgi", portal)
        finally:
            for site in sites:
                portal.call(site.aclose)


@pytest.fixture(params=["wsgi", "asgi"])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    """The example project, served the WSGI way and the ASGI way."""
    with serving(request.param) as served:
        yield served


@pytest.fixture
def wsgi() -> Iterator[Served]:
    """The example project, served the WSGI way."""
    with serving("wsgi") as served:
        yield served


@pytest.fixture
def asgi() -> Iterator[Served]:
    """The example project, served the ASGI way."""
    with serving("asgi") as served:
        yield served
