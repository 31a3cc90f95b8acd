"""``python -m acp_adapters serve|agents``, ``manage.py acp_agents`` and ``flask acp agents``: real
processes and real servers, one line and exit code 2 for each mistake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from flask import Flask

from acp_adapters.cli import describe_agents, load_registry, make_app
from acp_adapters.core.agents import AgentRegistry
from acp_adapters.core.memory_store import MemoryStore
from acp_adapters.core.settings import Settings
from acp_adapters.flask import ACP
from acp_adapters.stores import store_from_url
from acp_adapters.stores.redis import RedisStore
from tests.deployments.base import free_port

AGENTS_MODULE = '''
from acp_adapters.core.agents import AgentRegistry

agents = AgentRegistry()


@agents.agent()
async def echo(input, context):
    """Echoes what it is sent.

    And says nothing else."""
    for message in input:
        yield message


@agents.agent(name="shout", output_content_types=["text/plain"])
def shout(input):
    """Answers in capitals."""
    return "HELLO"


def make_agents():
    return agents


number = 3
'''


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "myagents.py").write_text(AGENTS_MODULE)
    (tmp_path / "broken.py").write_text("raise RuntimeError('the module\\nis broken')\n")
    return tmp_path


def run_cli(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    return subprocess.run(
        [sys.executable, "-m", "acp_adapters", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_agents_lists_names_and_summaries(workdir: Path) -> None:
    result = run_cli(workdir, "agents", "myagents:agents")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "echo                     Echoes what it is sent.",
        "shout                    Answers in capitals.",
    ]


def test_agents_json_is_what_get_agents_answers(workdir: Path) -> None:
    result = run_cli(workdir, "agents", "myagents:make_agents", "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert [agent["name"] for agent in listing["agents"]] == ["echo", "shout"]
    assert listing["agents"][0]["description"] == "Echoes what it is sent.\n\nAnd says nothing else."
    assert listing["agents"][1]["output_content_types"] == ["text/plain"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("myagents", "'myagents' is not module:registry (for example myapp.agents:registry)"),
        ("myagents:", "'myagents:' is not module:registry"),
        ("nowhere:agents", "no module named 'nowhere'"),
        ("broken:agents", "importing 'broken' failed: RuntimeError: the module is broken"),
        ("myagents:missing", "'myagents' has no attribute 'missing' (registries in myagents: agents)"),
        ("myagents:number", "myagents:number is a int, not an AgentRegistry or a function returning one"),
        ("myagents:AgentRegistry", "myagents:AgentRegistry is a type, not an AgentRegistry"),
    ],
)
@pytest.mark.parametrize("command", ["agents", "serve"])
def test_a_mistake_is_one_line_and_exit_code_2(workdir: Path, command: str, spec: str, message: str) -> None:
    result = run_cli(workdir, command, spec)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("acp_adapters: error: ")
    assert message in lines[0]


def test_a_bad_setting_in_the_environment_stops_serve(workdir: Path) -> None:
    env_result = subprocess.run(
        [sys.executable, "-m", "acp_adapters", "serve", "myagents:agents", "--port", str(free_port())],
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(Path.cwd()), "ACP_AWAIT_TIMEOUT": "soon"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert env_result.returncode == 2
    assert env_result.stderr.startswith("acp_adapters: error: ValueError: ACP_AWAIT_TIMEOUT")
    assert len(env_result.stderr.splitlines()) == 1


@pytest.fixture
def server(workdir: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, Path]]:
    port = free_port()
    args = getattr(request, "param", [])
    process = subprocess.Popen(
        [sys.executable, "-m", "acp_adapters", "serve", "myagents:agents", "--port", str(port), *args],
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(Path.cwd()), "ACP_MAX_RUN_DURATION": "7"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/acp/agents")
        yield base, workdir
    finally:
        os.killpg(process.pid, 2)  # SIGINT: uvicorn (and its reloader) shut down cleanly
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def wait_until_up(url: str, timeout: float = 30.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.slow
def test_serve_answers_runs_under_the_prefix(server: tuple[str, Path]) -> None:
    base, _ = server
    assert [agent["name"] for agent in httpx.get(f"{base}/acp/agents").json()["agents"]] == ["echo", "shout"]
    run = httpx.post(
        f"{base}/acp/runs",
        json={"agent_name": "shout", "input": [{"parts": [{"content": "hi", "content_type": "text/plain"}]}]},
        timeout=10,
    ).json()
    assert run["status"] == "completed"
    assert run["output"][0]["parts"][0]["content"] == "HELLO"
    elsewhere = httpx.get(f"{base}/")
    assert elsewhere.status_code == 404
    assert elsewhere.json()["message"] == "not found: the ACP API is under /acp/"


@pytest.mark.slow
@pytest.mark.parametrize("server", [["--prefix", "/agents-api/"]], indirect=True)
def test_serve_mounts_at_another_prefix(server: tuple[str, Path]) -> None:
    base, _ = server
    assert httpx.get(f"{base}/agents-api/agents").status_code == 200
    assert httpx.get(f"{base}/acp/agents").status_code == 404


@pytest.mark.slow
@pytest.mark.parametrize("server", [["--reload"]], indirect=True)
def test_serve_reload_picks_up_a_changed_module(server: tuple[str, Path]) -> None:
    base, workdir = server
    module = workdir / "myagents.py"
    changed = module.read_text().replace("Answers in capitals.", "Shouts back.")
    deadline = time.monotonic() + 30
    written = 0.0
    while True:
        # Written again every second: the reloader watches files only once its loop has begun, which
        # may come after the server answers, and a change made before then goes unseen.
        if time.monotonic() - written > 1.0:
            module.write_text(changed)
            written = time.monotonic()
        try:
            agents = httpx.get(f"{base}/acp/agents", timeout=2).json()["agents"]
            if agents[1]["description"] == "Shouts back.":
                break
        except httpx.TransportError:
            pass  # between the old worker and the new one
        assert time.monotonic() < deadline, "the server did not reload"
        time.sleep(0.2)


def test_load_registry_calls_a_factory(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(workdir))
    monkeypatch.delitem(sys.modules, "myagents", raising=False)
    registry = load_registry("myagents:make_agents")
    assert [agent.name for agent in registry] == ["echo", "shout"]


def test_describe_agents_of_an_empty_registry() -> None:
    assert describe_agents(AgentRegistry()) == "(no agents)"
    assert json.loads(describe_agents(AgentRegistry(), as_json=True)) == {"agents": []}


def two_agents() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    def first(input: object) -> str:
        """The first agent.

        Details."""
        return "1"

    @agents.agent()
    def second(input: object) -> str:
        return "2"

    return agents


def test_manage_py_acp_agents_lists_as_flask_does(capsys: pytest.CaptureFixture[str]) -> None:
    with override_settings(ACP_ADAPTERS={"REGISTRY": "tests.cli.test_cli.two_agents"}):
        call_command("acp_agents")
        django_text = capsys.readouterr().out
        call_command("acp_agents", "--json")
        django_json = json.loads(capsys.readouterr().out)
    app = Flask(__name__)
    ACP(app, two_agents())
    flask_text = app.test_cli_runner().invoke(args=["acp", "agents"]).output
    assert django_text == flask_text == "first                    The first agent.\nsecond\n"
    assert [agent["name"] for agent in django_json["agents"]] == ["first", "second"]


def test_manage_py_acp_agents_with_a_bad_registry_says_what_to_set() -> None:
    with (
        override_settings(ACP_ADAPTERS={"REGISTRY": "tests.cli.test_cli.no_such_thing"}),
        pytest.raises(CommandError, match=r"ACP_ADAPTERS\['REGISTRY'\] = 'tests.cli.test_cli.no_such_thing'"),
    ):
        call_command("acp_agents")


def test_serve_takes_settings_and_store_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACP_MAX_RETAINED_BYTES", "5000")
    monkeypatch.setenv("ACP_RUN_RETENTION", "12")
    monkeypatch.setenv("ACP_STORE", "redis://127.0.0.1:6379/3")
    app = make_app(two_agents(), prefix="/x")
    assert app.prefix == "/x"
    store = app.acp.service.store
    assert isinstance(store, RedisStore)
    assert (store.max_retained_bytes, store.retention) == (5000, 12.0)


def test_store_from_url_bounds_the_memory_store_by_bytes() -> None:
    settings = Settings(max_retained_bytes=5000, run_retention=12.0)
    memory = store_from_url("memory://", settings=settings)
    assert isinstance(memory, MemoryStore)
    assert (memory.max_retained_bytes, memory.retention) == (5000, 12.0)
    chosen = store_from_url("", settings=settings, max_retained_bytes=100)  # an option wins over settings
    assert isinstance(chosen, MemoryStore)
    assert chosen.max_retained_bytes == 100


def test_agents_piped_into_a_reader_that_stops_early_ends_quietly(workdir: Path) -> None:
    add = "agents.add(lambda input: None, name='a{}', description='x' * 200)\n"
    adds = "".join(add.format(i) for i in range(500))
    header = "from acp_adapters import AgentRegistry\nagents = AgentRegistry()\n"
    (workdir / "many.py").write_text(header + adds)
    command = f"{sys.executable} -m acp_adapters agents many:agents --json | head -c 10"
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    result = subprocess.run(
        command, shell=True, cwd=workdir, env=env, capture_output=True, text=True, check=False
    )
    assert result.stdout == '{\n  "agent'
    assert result.stderr == ""
