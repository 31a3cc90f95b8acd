"""The shipped store conformance suite (:mod:`acp_adapters.testing.stores`) over every backend of
:func:`tests.stores.backends.load`: memory, Redis, the Django database on SQLite and PostgreSQL
(``test_dict_store.py`` runs it over the dict-backed example store, as a third party would).

The tests are defined once, in the package; here only the ``stores`` fixture changes: the one of
``conftest.py``, parametrised by backend.
"""

from __future__ import annotations

import pytest

from acp_adapters.testing.stores import StoreConformance, StoreScope


class TestConformance(StoreConformance):
    @pytest.fixture
    def stores(self, stores: StoreScope) -> StoreScope:
        return stores
