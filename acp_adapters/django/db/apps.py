"""The app config of the database store (see :mod:`acp_adapters.django.db`)."""

from __future__ import annotations

from django.apps import AppConfig


class ACPDatabaseStoreConfig(AppConfig):
    """Holds the database store's models, migrations, admin pages and ``acp_purge``.

    The label is ``acp_adapters``: the tables (``acp_adapters_run``...) and the migration history keep
    the names they had when the models were part of ``acp_adapters.django``.
    """

    name = "acp_adapters.django.db"
    label = "acp_adapters"
    verbose_name = "ACP adapters (database store)"
    default_auto_field = "django.db.models.BigAutoField"
