"""Fixtures of the Celery tests: ``prefix``, a Redis key prefix of one test's own (as the store tests')."""

from __future__ import annotations

from tests.stores.conftest import prefix

__all__ = ["prefix"]
