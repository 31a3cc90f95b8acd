"""The Django app of acp-adapters (``INSTALLED_APPS += ["acp_adapters.django"]``)."""

from __future__ import annotations

from django.apps import AppConfig


class ACPAdaptersConfig(AppConfig):
    """Registers the system checks of ``settings.ACP_ADAPTERS`` and holds the optional database store.

    The label is ``acp_adapters`` (not ``django``, the last part of the dotted name), so that the
    app's models and migrations do not clash with Django's own.
    """

    name = "acp_adapters.django"
    label = "acp_adapters"
    verbose_name = "ACP adapters"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the checks
