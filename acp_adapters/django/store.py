"""The former home of the database store, kept so that settings naming
``"acp_adapters.django.store.DjangoStore"`` go on working.

The store lives in its app, :mod:`acp_adapters.django.db`: name it
``"acp_adapters.django.db.store.DjangoStore"``.
"""

from __future__ import annotations

from .db.store import DATABASE_APP, DATABASE_APP_MISSING, DjangoStore

__all__ = ["DATABASE_APP", "DATABASE_APP_MISSING", "DjangoStore"]
