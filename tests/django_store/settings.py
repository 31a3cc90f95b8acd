"""Django settings of the database-store tests, and the aliases they use.

:func:`configure` is idempotent and safe to call from any conftest or test module: if Django is not
configured yet it configures it with :data:`SETTINGS`; if another test package configured it first, it
only adds the store's own database aliases (and complains if ``acp_adapters.django.db`` is not installed).

Aliases
-------

* ``acp_sqlite``: a SQLite file in a temporary directory (the store is used from several threads, which
  an in-memory database does not allow well).
* ``acp_postgres``: the PostgreSQL server of ``DATABASE_URL`` (default
  ``postgresql://postgres@127.0.0.1:5432/test``), with its own test database ``test_acp_django_store_<pid>``;
  present only when the server answers (:data:`POSTGRES_AVAILABLE`).
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = [
    "DATABASE_URL",
    "DEAD_POSTGRES",
    "DEAD_SQLITE",
    "POSTGRES",
    "POSTGRES_AVAILABLE",
    "POSTGRES_REASON",
    "SETTINGS",
    "SQLITE",
    "configure",
    "postgres_database",
]

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
SQLITE = "acp_sqlite"
POSTGRES = "acp_postgres"
DEAD_POSTGRES = "acp_dead_postgres"
DEAD_SQLITE = "acp_dead_sqlite"

_TMP = tempfile.mkdtemp(prefix="acp-django-store-")
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)


def postgres_database(url: str = DATABASE_URL, **test: Any) -> dict[str, Any]:
    """A Django ``DATABASES`` entry for a ``postgresql://user:password@host:port/name`` URL."""
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or "postgres"),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "127.0.0.1",
        "PORT": str(parts.port or 5432),
        # A server that is down must fail a request quickly, not hang it.
        "OPTIONS": {"connect_timeout": 3},
        "TEST": test,
    }


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _reachable(url: str) -> tuple[bool, str]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return True, ""
    except OSError as exc:
        return False, f"PostgreSQL ({url}, from DATABASE_URL) is not reachable at {host}:{port} ({exc})"


POSTGRES_AVAILABLE, POSTGRES_REASON = _reachable(DATABASE_URL)


def _aliases() -> dict[str, dict[str, Any]]:
    sqlite_file = os.path.join(_TMP, "store.sqlite3")
    aliases: dict[str, dict[str, Any]] = {
        SQLITE: {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": sqlite_file,
            # Writers wait for each other instead of failing with "database is locked".
            "OPTIONS": {"timeout": 30},
            # No dependency on "default": these aliases are set up on their own.
            "TEST": {"NAME": sqlite_file, "DEPENDENCIES": []},
        }
    }
    # Databases that cannot be reached, never set up: the store must answer StoreUnavailable quickly.
    aliases[DEAD_POSTGRES] = postgres_database(f"postgresql://postgres@127.0.0.1:{_closed_port()}/none")
    aliases[DEAD_SQLITE] = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(_TMP, "missing", "db"),
    }
    if POSTGRES_AVAILABLE:
        # A name of its own per test process: several test sessions may share the server.
        name = f"test_acp_django_store_{os.getpid()}"
        aliases[POSTGRES] = postgres_database(NAME=name, DEPENDENCIES=[])
    return aliases


SETTINGS: dict[str, Any] = {
    "SECRET_KEY": "acp-adapters-django-store-tests",
    "DEBUG": False,
    "USE_TZ": True,
    "ALLOWED_HOSTS": ["testserver", "127.0.0.1", "localhost"],
    "INSTALLED_APPS": [
        "django.contrib.admin",
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
        "acp_adapters.django",
        "acp_adapters.django.db",
    ],
    "MIDDLEWARE": [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ],
    "ROOT_URLCONF": "tests.django_store.urls",
    "TEMPLATES": [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "APP_DIRS": True,
            "OPTIONS": {
                "context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages",
                ]
            },
        }
    ],
    "DATABASES": {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
    "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
}


def configure() -> None:
    """Configure Django for these tests, or add the store's aliases to the settings already in force."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(**{**SETTINGS, "DATABASES": {**SETTINGS["DATABASES"], **_aliases()}})
    else:
        missing = {alias: entry for alias, entry in _aliases().items() if alias not in settings.DATABASES}
        if missing:
            from django.db import connections

            settings.DATABASES.update(missing)
            # The connection handler caches the settings it read: make it read them again.
            connections.__dict__.pop("settings", None)
            connections._settings = None  # type: ignore[attr-defined]  # Django's private cache, see above
        if "acp_adapters.django.db" not in settings.INSTALLED_APPS:
            raise RuntimeError(
                "the Django settings in force do not install acp_adapters.django.db, which the database "
                "store tests need: add it to INSTALLED_APPS (or let tests/django_store/settings.py configure)"
            )
    django.setup()
