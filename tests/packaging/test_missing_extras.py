"""Without its extra, each adapter and store fails at import with the ``pip install`` that fixes it.

Each case runs in a fresh interpreter where the extra's packages cannot be imported
(``sys.modules[name] = None``, as Python does for a package that is not installed).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_without(blocked: list[str], code: str) -> subprocess.CompletedProcess[str]:
    prelude = f"import sys\nfor name in {blocked!r}:\n    sys.modules[name] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("blocked", "module", "install"),
    [
        (["django"], "acp_adapters.django", 'pip install "acp-adapters[django]"'),
        (["asgiref"], "acp_adapters.django", 'pip install "acp-adapters[django]"'),
        (["django"], "acp_adapters.django.store", 'pip install "acp-adapters[django]"'),
        (["flask"], "acp_adapters.flask", 'pip install "acp-adapters[flask]"'),
        (["werkzeug"], "acp_adapters.flask", 'pip install "acp-adapters[flask]"'),
        (["redis"], "acp_adapters.stores.redis", 'pip install "acp-adapters[redis]"'),
    ],
)
def test_an_adapter_without_its_extra_names_the_install(
    blocked: list[str], module: str, install: str
) -> None:
    result = run_without(
        blocked,
        f"""
        try:
            import {module}
        except ImportError as exc:
            print(exc)
        else:
            print("imported")
        """,
    )
    assert result.returncode == 0, result.stderr
    assert install in result.stdout, result.stdout
    assert blocked[0] in result.stdout  # and what is missing


def test_store_from_url_without_redis_names_the_install() -> None:
    result = run_without(
        ["redis"],
        """
        from acp_adapters.stores import store_from_url
        try:
            store_from_url("redis://127.0.0.1:6379/0")
        except ImportError as exc:
            print(exc)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith('pip install "acp-adapters[redis]"')


def test_the_asgi_adapter_and_the_cli_need_no_extra() -> None:
    extras = ["starlette", "flask", "werkzeug", "django", "asgiref", "redis", "psycopg", "uvicorn"]
    result = run_without(
        extras,
        """
        import anyio
        from acp_adapters import cli, wsgi
        from acp_adapters.asgi import ACPApp, ACPMiddleware
        from acp_adapters.core.agents import AgentRegistry
        from acp_adapters.stores import store_from_url

        agents = AgentRegistry()

        @agents.agent()
        def hello(input):
            return "hello"

        app = ACPApp(agents, store=store_from_url("memory://"))
        sent = []

        async def request():
            messages = [{"type": "http.request", "body": b"", "more_body": False}]

            async def receive():
                return messages.pop(0) if messages else {"type": "http.disconnect"}

            async def send(message):
                sent.append(message)

            scope = {"type": "http", "method": "GET", "path": "/agents", "headers": [], "query_string": b""}
            await app(scope, receive, send)
            await app.aclose()

        anyio.run(request)
        print(sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]).decode())
        print(cli.describe_agents(agents))
        """,
    )
    assert result.returncode == 0, result.stderr
    status_line, listing = result.stdout.splitlines()[:2]
    assert status_line.startswith('200 {"agents":[{"name":"hello"')
    assert listing.startswith("hello")


def test_serve_without_uvicorn_names_the_install(tmp_path: Path) -> None:
    result = run_without(
        ["uvicorn"],
        """
        from acp_adapters.cli import main
        sys.exit(main(["serve", "example_agents:registry"]))
        """,
    )
    assert result.returncode == 2
    assert result.stderr == 'acp_adapters: error: serve needs uvicorn: pip install "acp-adapters[serve]"\n'


def test_the_database_store_on_postgresql_without_psycopg_3_names_the_install() -> None:
    # Django's PostgreSQL backend also runs on psycopg2, but LISTEN/NOTIFY needs psycopg 3: load the
    # backend, then take psycopg away, as on a machine with psycopg2 only.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys
                import django
                from django.conf import settings

                settings.configure(
                    INSTALLED_APPS=["acp_adapters.django", "acp_adapters.django.db"],
                    DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "test"}},
                )
                django.setup()
                import django.db.backends.postgresql.base  # noqa: F401

                for name in [name for name in sys.modules if name.split(".")[0] == "psycopg"]:
                    del sys.modules[name]
                sys.modules["psycopg"] = None
                from acp_adapters.django.store import DjangoStore

                print(DjangoStore(listen=False).listens)
                try:
                    DjangoStore().listens
                except ImportError as exc:
                    print(exc)
                """
            ),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    polls, error = result.stdout.splitlines()
    assert polls == "False"
    assert 'pip install "acp-adapters[postgres]"' in error
    assert "DjangoStore(listen=False)" in error
