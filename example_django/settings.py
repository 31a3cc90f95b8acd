"""Settings of the example project (``DJANGO_SETTINGS_MODULE=example_django.settings``).

The ACP part is ``ACP_ADAPTERS`` at the end; the rest is a plain Django project. Environment:

* ``ACP_STORE``: where runs and sessions live. Empty or ``memory://`` (the default): this process's
  memory, so a single worker process (threads are fine); ``redis://127.0.0.1:6379/0``: Redis, shared
  by any number of processes; ``django``: this project's database (``manage.py migrate`` first).
* ``ACP_EXECUTOR=celery``: runs execute on the Celery worker of ``example_agents.worker`` (with
  ``ACP_STORE`` naming Redis or ``django``; docs/celery.md); by default in the web process.
* ``ACP_<SETTING>``: any :class:`~acp_adapters.Settings` field, on top of ``DEMO_SETTINGS``
  (``Settings.from_env``, read when these settings are loaded): ``ACP_MAX_RUN_DURATION=2``,
  ``ACP_MAX_BODY_SIZE=1048576``, ``ACP_TRUSTED_ORIGINS=http://127.0.0.1:8001,http://127.0.0.1:8002``
  (lists are comma-separated). No origin is trusted unless ``ACP_TRUSTED_ORIGINS`` names it: two local
  instances sharing a session name each other there. Both mounts use these settings.
* ``ACP_DEMO_TOKENS``: ``alice=token-a,bob=token-b``, bearer tokens that open ``/acp-private/``
  without logging in, and the owners they stand for (unset: none; logged-in users are let in too).
* ``DJANGO_DEBUG=1``, ``DJANGO_SECRET_KEY``, ``DJANGO_ALLOWED_HOSTS`` (comma-separated, added to
  the loopback names), ``DJANGO_DB`` (the SQLite file).
"""

from __future__ import annotations

import os
from pathlib import Path

from acp_adapters import Settings
from example_agents import DEMO_SETTINGS

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-django-insecure-key-not-for-production")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = [
    "127.0.0.1",
    "localhost",
    "[::1]",
    "testserver",
    *filter(None, os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",")),
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "acp_adapters.django",
    # The database store's tables and admin pages: only because this example can keep runs in its
    # database (ACP_STORE=django). A project on the in-memory store or Redis leaves it out.
    "acp_adapters.django.db",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_django.urls"
WSGI_APPLICATION = "example_django.wsgi.application"
ASGI_APPLICATION = "example_django.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB", str(BASE_DIR / "db.sqlite3")),
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"

# The ACP API -----------------------------------------------------------------------------------------
# ACP_STORE=django keeps runs in this project's database; any other value is a store URL
# (memory://, redis://...) that example_agents.store_from_env reads.
if os.environ.get("ACP_STORE", "") == "django":
    _STORE = "acp_adapters.django.db.store.DjangoStore"
else:
    _STORE = "example_agents.store_from_env"

ACP_ADAPTERS = {
    # The demo agents every example serves, and their settings: the demo defaults (no trusted
    # origin) with the ACP_* environment applied.
    "REGISTRY": "example_agents.demo_registry",
    "SETTINGS": Settings.from_env(base=DEMO_SETTINGS),
    # The store: a Store, or a function returning one (None: the in-memory store).
    "STORE": _STORE,
    # Where runs execute: ACP_EXECUTOR=celery hands them to the Celery worker of example_agents.worker
    # (None, the default: in the web process).
    "EXECUTOR": "example_agents.executor_from_env",
}
