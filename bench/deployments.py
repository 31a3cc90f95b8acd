"""Every deployment the harness can measure: what it runs, on which server, beside which floor.

A deployment is one server process tree on a free loopback port. Adding one (a new store, more
workers) is adding an entry to :data:`DEPLOYMENTS`; the entries with ``default=False`` are the hooks
for later issues, measured only when asked for by name (``--deployments``) and skipped with a note
while what they need (a module, a service) is not there.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["A2A_SCENARIOS", "DEPLOYMENTS", "Deployment", "by_name"]

REDIS_URL = "redis://127.0.0.1:6379/0"
DJANGO_ENV = {"DJANGO_SETTINGS_MODULE": "example_django.settings"}
#: The scenarios that speak A2A: only deployments with an ``a2a_mount`` take part.
A2A_SCENARIOS = ("a2a-send", "a2a-stream")
A2A_MOUNT = "/a2a"


@dataclass(frozen=True)
class Deployment:
    """One thing to measure.

    ``kind`` is ``adapter`` (acp-adapters in an example app), ``floor`` (a bare route of the
    framework), ``acp-sdk`` (the official ACP server) or ``a2a-sdk`` (the official A2A server).
    ``floor`` names the deployment this one's ratios are taken against. ``a2a_mount`` is where it
    serves A2A (each agent at ``{a2a_mount}/{name}``), ``None`` if it does not. ``requires`` are
    modules that must import (with ``env``) and ``services`` servers that must answer (``redis``,
    ``postgres``) for it to run; otherwise it is skipped with a note. ``scenarios`` restricts what it
    runs (``None``: all); ``setup`` names what must be prepared around its server (:mod:`bench.setups`).
    """

    name: str
    label: str
    kind: str
    server: str  # "uvicorn" or "gunicorn"
    app: str
    floor: str | None = None
    mount: str = "/acp"
    a2a_mount: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 1
    requires: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    scenarios: tuple[str, ...] | None = None
    default: bool = True
    setup: str | None = None  # a context manager of bench.setups run around the server

    def command(self, port: int, python: str = sys.executable) -> list[str]:
        """The command line that serves this deployment on ``127.0.0.1:port``."""
        if self.server == "gunicorn":
            return [
                python, "-m", "gunicorn", "-w", str(self.workers), "-k", "gthread", "--threads", "32",
                "-b", f"127.0.0.1:{port}", "--log-level", "warning", *_gunicorn_options(), self.app,
            ]  # fmt: skip
        command = [
            python, "-m", "uvicorn", self.app, "--host", "127.0.0.1", "--port", str(port),
            "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        if self.kind == "acp-sdk":
            command += ["--app-dir", str(Path(__file__).resolve().parent)]
        if self.workers > 1:
            command += ["--workers", str(self.workers)]
        return command

    def runs(self, scenario: str) -> bool:
        """Whether this deployment takes part in ``scenario``."""
        if scenario in A2A_SCENARIOS and self.a2a_mount is None:
            return False
        return self.scenarios is None or scenario in self.scenarios

    @property
    def server_label(self) -> str:
        """How it is served, e.g. ``gunicorn gthread 32, 1 worker``."""
        server = "gunicorn gthread 32" if self.server == "gunicorn" else "uvicorn"
        return f"{server}, {self.workers} worker{'s' if self.workers > 1 else ''}"


def _gunicorn_options() -> list[str]:
    """Options for this gunicorn version: since 24, each master opens a control socket at one fixed
    path in the home directory unless told not to, and several masters at once would share it."""
    try:
        from gunicorn.config import KNOWN_SETTINGS  # type: ignore[import-untyped]  # gunicorn ships no types
    except ImportError:
        return []
    return ["--no-control-socket"] if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS) else []


_SCALE_SCENARIOS = ("sync-16", "stream")

DEPLOYMENTS: tuple[Deployment, ...] = (
    Deployment("starlette", "Starlette adapter", "adapter", "uvicorn", "example_starlette.app:app",
               floor="floor-starlette", a2a_mount=A2A_MOUNT),
    Deployment("floor-starlette", "Starlette floor", "floor", "uvicorn", "bench.floors.starlette_app:app"),
    Deployment("acp-sdk", "acp-sdk 1.0.3 server", "acp-sdk", "uvicorn", "acpsdk_app:app",
               floor="floor-starlette", mount=""),
    Deployment("flask", "Flask adapter", "adapter", "gunicorn", "example_flask.app:app", floor="floor-flask",
               a2a_mount=A2A_MOUNT),
    Deployment("floor-flask", "Flask floor", "floor", "gunicorn", "bench.floors.flask_app:app"),
    Deployment("django-asgi", "Django adapter (ASGI)", "adapter", "uvicorn",
               "example_django.asgi:application", floor="floor-django-asgi", env=DJANGO_ENV,
               a2a_mount=A2A_MOUNT),
    Deployment("floor-django-asgi", "Django floor (ASGI)", "floor", "uvicorn",
               "bench.floors.django_asgi:application"),
    Deployment("django-wsgi", "Django adapter (WSGI)", "adapter", "gunicorn",
               "example_django.wsgi:application", floor="floor-django-wsgi", env=DJANGO_ENV,
               a2a_mount=A2A_MOUNT),
    Deployment("floor-django-wsgi", "Django floor (WSGI)", "floor", "gunicorn",
               "bench.floors.django_wsgi:application"),
    # Issue 16: the official A2A server doing the A2A scenarios' work, beside the adapters' /a2a.
    Deployment("a2a-sdk", "a2a-sdk 1.3 server", "a2a-sdk", "uvicorn", "bench.a2asdk_app:app", mount="",
               a2a_mount="", requires=("a2a.server.routes",), scenarios=A2A_SCENARIOS),
    # Hooks for the shared stores (issue 6): measured when named with --deployments.
    Deployment("starlette-redis-4w", "Starlette adapter, Redis store", "adapter", "uvicorn",
               "example_starlette.app:app", floor="floor-starlette-4w", workers=4,
               env={"ACP_STORE": REDIS_URL}, requires=("acp_adapters.stores.redis",), services=("redis",),
               scenarios=_SCALE_SCENARIOS, default=False),
    # Issue 14: the same, with every run executed by Celery workers (two, 32 threads each).
    Deployment("starlette-redis-celery", "Starlette adapter, Redis store, Celery", "adapter", "uvicorn",
               "example_starlette.app:app", floor="floor-starlette-4w", workers=4,
               env={"ACP_STORE": REDIS_URL, "ACP_EXECUTOR": "celery", "ACP_CELERY_SHUTDOWN_GRACE": "1"},
               requires=("acp_adapters.stores.redis", "acp_adapters.celery"), services=("redis",),
               scenarios=_SCALE_SCENARIOS, default=False, setup="celery_workers"),
    Deployment("floor-starlette-4w", "Starlette floor", "floor", "uvicorn", "bench.floors.starlette_app:app",
               workers=4, scenarios=_SCALE_SCENARIOS, default=False),
    Deployment("flask-redis-4w", "Flask adapter, Redis store", "adapter", "gunicorn", "example_flask.app:app",
               floor="floor-flask-4w", workers=4, env={"ACP_STORE": REDIS_URL},
               requires=("acp_adapters.stores.redis",), services=("redis",), scenarios=_SCALE_SCENARIOS,
               default=False),
    Deployment("floor-flask-4w", "Flask floor", "floor", "gunicorn", "bench.floors.flask_app:app", workers=4,
               scenarios=_SCALE_SCENARIOS, default=False),
    Deployment("django-postgres", "Django adapter, PostgreSQL store", "adapter", "gunicorn",
               "example_django.wsgi:application", floor="floor-django-wsgi-4w", workers=4,
               env={"DJANGO_SETTINGS_MODULE": "bench.django_pg_settings"}, setup="django_postgres",
               requires=("acp_adapters.django.store", "psycopg"), services=("postgres",),
               scenarios=_SCALE_SCENARIOS, default=False),
    Deployment("floor-django-wsgi-4w", "Django floor (WSGI)", "floor", "gunicorn",
               "bench.floors.django_wsgi:application", workers=4, scenarios=_SCALE_SCENARIOS, default=False),
)  # fmt: skip


def by_name(name: str) -> Deployment:
    """The deployment called ``name`` (``KeyError`` listing the known names otherwise)."""
    for deployment in DEPLOYMENTS:
        if deployment.name == name:
            return deployment
    raise KeyError(f"unknown deployment {name!r}; known: {', '.join(d.name for d in DEPLOYMENTS)}")
