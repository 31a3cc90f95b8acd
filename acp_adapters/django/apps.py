"""The Django app of acp-adapters (``INSTALLED_APPS += ["acp_adapters.django"]``)."""

from __future__ import annotations

from django.apps import AppConfig


class ACPAdaptersConfig(AppConfig):
    """Registers the system checks of ``settings.ACP_ADAPTERS`` and ``manage.py acp_agents``.

    It has no models: the database store is an app of its own, ``acp_adapters.django.db``, added only by
    the projects that keep runs in their database. The label is ``acp_adapters_django`` (not
    ``django``, the last part of the dotted name, which is Django's own; ``acp_adapters`` is the
    database store's).
    """

    name = "acp_adapters.django"
    label = "acp_adapters_django"
    verbose_name = "ACP adapters"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the checks
