"""The examples' Celery worker: from the repository root,
``celery -A example_agents.worker worker --loglevel=warning``, with the web processes' environment
(``ACP_EXECUTOR=celery``, ``ACP_STORE``, any ``ACP_<SETTING>``; see :mod:`example_agents.celery_app`).

It builds the services of the examples' two mounts, ``/acp`` and ``/acp-private``, as every example
builds them (the same agents, store and settings, and an executor of each mount's name), and executes
the runs the web processes hand over. With ``ACP_STORE=django`` it sets Django up with
``example_django.settings`` (or ``DJANGO_SETTINGS_MODULE``): the Django sites, made when the first
run comes, are the services then.
"""

from __future__ import annotations

import os

from acp_adapters import ACPService, Settings
from example_agents import DEMO_SETTINGS, demo_registry, private_registry, store_from_env
from example_agents.celery_app import celery_app, executor

__all__ = ["SERVICES", "app"]

#: The Celery app (what ``celery -A example_agents.worker`` looks for).
app = celery_app()

#: The services whose runs this worker executes (empty with the Django store: the sites are the services).
SERVICES: list[ACPService] = []

if os.environ.get("ACP_STORE", "") == "django":
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_django.settings")
    django.setup()
else:
    _settings = Settings.from_env(base=DEMO_SETTINGS)
    SERVICES += [
        ACPService(demo_registry(), store=store_from_env(), settings=_settings, executor=executor("acp")),
        ACPService(
            private_registry(),
            store=store_from_env("private"),
            settings=_settings,
            executor=executor("acp-private"),
        ),
    ]
