"""The wheel as a user gets it: built, installed (not editable) with every extra into a fresh virtual
environment, each adapter imported there, and a request served by ``python -m acp_adapters serve``.

One venv and one install for all extras (a venv per extra would cost minutes); pip fetches the
dependencies from the package index.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.deployments.base import free_port

ROOT = Path(__file__).resolve().parents[2]
EXTRAS = "starlette,flask,django,redis,postgres,serve,otel"

AGENTS_MODULE = '''
from acp_adapters.core.agents import AgentRegistry

agents = AgentRegistry()


@agents.agent()
def hello(input):
    """Says hello."""
    return "hello from the wheel"
'''

IMPORT_EVERY_ADAPTER = """
import django
from django.conf import settings

settings.configure(INSTALLED_APPS=["acp_adapters.django"], DATABASES={})
django.setup()

import acp_adapters
import acp_adapters.asgi
import acp_adapters.core.telemetry
import acp_adapters.django
import acp_adapters.django.store
import acp_adapters.flask
import acp_adapters.stores.redis
import acp_adapters.testing
import acp_adapters.wsgi
import psycopg
import starlette
import uvicorn

print(acp_adapters.__file__)
"""


#: The environment of the venv's commands: nothing that would reach the checkout or change settings.
CLEAN_ENV = {key: value for key, value in os.environ.items() if not key.startswith(("ACP_", "PYTHON"))}


def run(*args: str | Path, cwd: Path = ROOT, timeout: float = 600) -> str:
    result = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, env=CLEAN_ENV, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
def test_the_wheel_installs_with_every_extra_and_serves(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", ".", "-w", dist)
    (wheel,) = dist.glob("acp_adapters-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "acp_adapters/py.typed" in names
    assert "acp_adapters/core/acp-openapi.json" in names  # {prefix}/openapi.json is made from it
    assert "acp_adapters/__main__.py" in names
    assert any(name.startswith("acp_adapters/django/db/migrations/") for name in names)
    assert {f"acp_adapters/playground/{asset}" for asset in ("index.html", "app.js", "app.css")} <= set(names)
    assert not any(name.startswith(("tests/", "example_")) for name in names)

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", f"{wheel}[{EXTRAS}]")

    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "myagents.py").write_text(AGENTS_MODULE)
    installed_at = run(python, "-c", IMPORT_EVERY_ADAPTER, cwd=app_dir).strip()
    assert installed_at.startswith(str(env_dir)), installed_at  # the wheel, not the checkout

    listing = json.loads(
        run(python, "-m", "acp_adapters", "agents", "myagents:agents", "--json", cwd=app_dir)
    )
    assert [agent["name"] for agent in listing["agents"]] == ["hello"]
    assert run(env_dir / "bin" / "acp-adapters", "agents", "myagents:agents", cwd=app_dir).startswith("hello")

    port = free_port()
    server = subprocess.Popen(
        [python, "-m", "acp_adapters", "serve", "myagents:agents", "--port", str(port)],
        cwd=app_dir,
        env=CLEAN_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}/acp"
        deadline = time.monotonic() + 30
        while True:
            try:
                agents = httpx.get(f"{base}/agents", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        assert agents.status_code == 200
        assert httpx.get(f"{base}/openapi.json", timeout=10).json()["servers"][0]["url"] == base
        run_ = httpx.post(
            f"{base}/runs",
            json={
                "agent_name": "hello",
                "input": [{"parts": [{"content": "hi", "content_type": "text/plain"}]}],
            },
            timeout=10,
        ).json()
        assert run_["status"] == "completed"
        assert run_["output"][0]["parts"][0]["content"] == "hello from the wheel"
    finally:
        server.terminate()
        server.wait(timeout=15)
