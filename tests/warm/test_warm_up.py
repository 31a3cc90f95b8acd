"""No cold worker: with the gunicorn hook of docs/deployment.md, every worker process has started its
ACP services (event loop, engine, store connections) before its first request; without it, a worker
starts them on its first ACP request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from flask import Flask

from acp_adapters import AgentRegistry
from acp_adapters.flask import ACP
from acp_adapters.workers import warm_up
from acp_adapters.wsgi import ACPWSGIApp, ACPWSGIMiddleware
from tests.deployments.base import gunicorn_command, require_service, serve
from tests.warm.probe import started

pytestmark = pytest.mark.slow

HOOK = ["-c", "tests/warm/gunicorn_conf.py"]
FLASK_APP = "tests.warm.app:app"
DJANGO_APP = "example_django.wsgi:application"
DJANGO_ENV = {"DJANGO_SETTINGS_MODULE": "tests.warm.django_settings"}


def first_probe_of_each_worker(base_url: str, workers: int = 2) -> dict[int, dict[str, Any]]:
    """The first probe each worker answers (a new connection per probe, so that they spread)."""
    seen: dict[int, dict[str, Any]] = {}
    with httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        for _ in range(400):
            answer = client.get(base_url + "/probe").json()
            seen.setdefault(answer["pid"], answer)
            if len(seen) == workers:
                return seen
    raise AssertionError(f"only workers {sorted(seen)} answered 400 probes")


def with_hook(app: str, hook: bool) -> list[str]:
    command = gunicorn_command(app, workers=2)
    return [*command[:-1], *HOOK, command[-1]] if hook else command


def probes(app: str, hook: bool, env: Mapping[str, str]) -> dict[int, dict[str, Any]]:
    # The readiness check's GET /acp/ping starts the services of the one worker that answers it.
    with serve(with_hook(app, hook), env=env, name="warm-up") as target:
        return first_probe_of_each_worker(target.base_url.removesuffix("/acp"))


def assert_one_cold_worker(answers: dict[int, dict[str, Any]]) -> None:
    """One worker has started nothing; the other answered the readiness check's ping (which started
    the loop and the engine of the mount at /acp, not those of /acp-private)."""
    cold = [answer for answer in answers.values() if not answer["loop_running"]]
    assert len(cold) == 1 and not cold[0]["engine_started"], answers


@pytest.mark.parametrize("store", ["", "redis://127.0.0.1:6379/0"], ids=["memory", "redis"])
def test_the_gunicorn_hook_starts_every_flask_worker(store: str) -> None:
    if store:
        require_service("127.0.0.1", 6379, "Redis")
    answers = probes(FLASK_APP, True, {"ACP_STORE": store})
    for answer in answers.values():
        assert answer["loop_running"] and answer["engine_started"], answers


def test_without_the_hook_a_flask_worker_starts_on_its_first_request() -> None:
    assert_one_cold_worker(probes(FLASK_APP, False, {}))


def test_the_gunicorn_hook_starts_every_django_worker() -> None:
    answers = probes(DJANGO_APP, True, DJANGO_ENV)
    for answer in answers.values():
        assert answer["loop_running"] and answer["engine_started"], answers


def test_without_the_hook_a_django_worker_starts_on_its_first_request() -> None:
    assert_one_cold_worker(probes(DJANGO_APP, False, DJANGO_ENV))


def test_warm_up_of_given_apps_starts_each_mount() -> None:
    app = Flask(__name__)
    first, second = ACP(app, AgentRegistry()), ACP(app, AgentRegistry(), name="other")
    wsgi_app = ACPWSGIApp(AgentRegistry())
    middleware = ACPWSGIMiddleware(Flask("host").wsgi_app, AgentRegistry())
    assert warm_up(app, wsgi_app, middleware) == 4
    services = [ACP.state(app).service, ACP.state(app, second.name).service]
    assert first.name == "acp"
    assert all(started(service) for service in [*services, wsgi_app.service, middleware.acp.service])


def test_warm_up_refuses_what_holds_no_mount() -> None:
    with pytest.raises(TypeError, match="found no ACP mount in Flask"):
        warm_up(Flask("bare"))
