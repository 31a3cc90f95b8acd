"""The Flask extension in process: both set-up forms, app.config, the app context for sync agents, the
host's hooks and error handlers, owners, the CLI, and the multi-worker warning."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from flask import Flask, abort, current_app, g, jsonify, request
from werkzeug.test import TestResponse

from acp_adapters import AgentRegistry, Settings
from acp_adapters.core.store import Store
from acp_adapters.flask import ACP, settings_from_config
from acp_adapters.workers import server_worker_count, warn_if_store_not_shared
from example_agents import demo_registry
from tests.flask.app import registry_for_tests
from tests.helpers import message, run_body

pytestmark = pytest.mark.flask


def json_of(response: TestResponse) -> Any:
    """The JSON body of a test client's response (typed ``Any``, as tests index into it)."""
    return response.get_json()


def run(app: Flask, agent: str, *texts: str, prefix: str = "/acp", **headers: str) -> Any:
    response = app.test_client().post(f"{prefix}/runs", json=run_body(agent, *texts), headers=headers)
    assert response.status_code == 200, response.data
    return json_of(response)


def texts(run: dict[str, Any]) -> list[str]:
    return [part["content"] for m in run["output"] for part in m["parts"]]


def test_the_one_line_form() -> None:
    app = Flask(__name__)
    acp = ACP(app, demo_registry())
    client = app.test_client()
    assert client.get("/acp/ping").status_code == 200
    assert len(json_of(client.get("/acp/agents"))["agents"]) == 15
    assert ACP.state(app).url_prefix == "/acp"
    assert app.extensions["acp"] is ACP.state(app)
    assert acp.registry is not None


def test_init_app_serves_each_app_of_a_factory() -> None:
    acp = ACP(registry=demo_registry())

    def create_app(prefix: str) -> Flask:
        app = Flask(__name__)
        app.config["ACP_URL_PREFIX"] = prefix
        acp.init_app(app)
        return app

    first, second = create_app("/acp"), create_app("/api/agents/")
    assert first.test_client().get("/acp/ping").status_code == 200
    assert second.test_client().get("/api/agents/ping").status_code == 200
    assert second.test_client().get("/acp/ping").status_code == 404
    # Each app has its own service: a run of one is unknown to the other.
    run_id = run(first, "echo")["run_id"]
    assert first.test_client().get(f"/acp/runs/{run_id}").status_code == 200
    assert second.test_client().get(f"/api/agents/runs/{run_id}").status_code == 404


def test_url_prefix_argument_wins_over_the_config() -> None:
    app = Flask(__name__)
    app.config["ACP_URL_PREFIX"] = "/ignored"
    ACP(app, demo_registry(), url_prefix="/agents-api")
    assert app.test_client().get("/agents-api/ping").status_code == 200
    assert app.test_client().get("/ignored/ping").status_code == 404


def test_the_mount_point_itself_and_a_trailing_slash_reach_the_core() -> None:
    app = Flask(__name__)
    ACP(app, demo_registry())
    for path in ("/acp", "/acp/"):
        response = app.test_client().get(path)
        assert response.status_code == 404, path
        assert json_of(response)["code"] == "not_found"
    assert app.test_client().get("/acp/agents/").status_code == 200


@pytest.mark.parametrize("method", ["PROPFIND", "OPTIONS", "DELETE", "PATCH"])
def test_any_method_reaches_the_core(method: str) -> None:
    app = Flask(__name__)
    ACP(app, demo_registry())
    response = app.test_client().open("/acp/agents", method=method)
    assert response.status_code == 405
    assert json_of(response)["code"] == "invalid_input"
    assert response.headers["Allow"] == "GET"
    assert app.test_client().head("/acp/agents").status_code == 200


def test_settings_come_from_app_config() -> None:
    app = Flask(__name__)
    app.config.update(ACP_MAX_BODY_SIZE=300, ACP_AWAIT_TIMEOUT=5, ACP_TRUSTED_ORIGINS=["http://a:1"])
    ACP(app, demo_registry(), settings=Settings(run_retention=60, await_timeout=100))
    settings = ACP.state(app).service.settings
    assert settings.max_body_size == 300
    assert settings.await_timeout == 5  # app.config wins over the settings argument
    assert settings.run_retention == 60  # the argument's, which app.config does not set
    assert settings.trusted_origins == ("http://a:1",)
    big = run_body("echo", "x" * 400)
    response = app.test_client().post("/acp/runs", json=big)
    assert response.status_code == 413
    assert json_of(response)["code"] == "invalid_input"


def test_a_body_over_the_limit_without_a_length_is_refused_too() -> None:
    app = Flask(__name__)
    app.config["ACP_MAX_BODY_SIZE"] = 300
    ACP(app, demo_registry())

    body = b'{"agent_name": "echo", "input": [], "padding": "' + b"x" * 10_000 + b'"}'
    stream = io.BytesIO(body)
    response = app.test_client().post(
        "/acp/runs",
        input_stream=stream,
        content_type="application/json",
        # What a server sets for a chunked body, which has no Content-Length.
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413, response.data
    assert json_of(response)["code"] == "invalid_input"
    assert stream.tell() <= 301  # read no further than the limit and one byte


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"ACP_MAX_BODY": 1}, "unknown ACP config key"),
        ({"ACP_MAX_BODY_SIZE": "big"}, "must be a number"),
        ({"ACP_AWAIT_TIMEOUT": -1}, "positive number"),
    ],
)
def test_a_wrong_config_key_fails_at_start(config: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        settings_from_config(config)


def test_sync_agents_run_in_the_app_context() -> None:
    from tests.flask.app import create_app

    app = create_app()
    assert texts(run(app, "configured")) == ["hello from the app config"]
    assert texts(run(app, "configured-gen")) == ["hello from the app config", "g kept tests.flask.app"]


def test_agents_registered_after_init_app_are_served() -> None:
    agents = AgentRegistry()
    app = Flask(__name__)
    app.config["GREETING"] = "late"
    ACP(app, agents)

    @agents.agent()
    def late(input: list[Any]) -> str:
        """Registered after the extension."""
        return str(current_app.config["GREETING"])

    assert [a["name"] for a in json_of(app.test_client().get("/acp/agents"))["agents"]] == ["late"]
    assert texts(run(app, "late")) == ["late"]


def test_before_request_hooks_and_error_handlers_apply_to_the_api() -> None:
    app = Flask(__name__)

    @app.before_request
    def require_token() -> None:
        if request.path.startswith("/acp") and request.headers.get("Authorization") != "Bearer ok":
            abort(401)

    @app.errorhandler(401)
    def unauthorized(error: Exception) -> Any:
        return jsonify(error="log in first"), 401

    @app.get("/boom")
    def boom() -> str:
        abort(418)

    @app.errorhandler(418)
    def teapot(error: Exception) -> Any:
        return "host handler", 418

    ACP(app, demo_registry())
    client = app.test_client()
    refused = client.get("/acp/agents")
    assert refused.status_code == 401
    assert json_of(refused) == {"error": "log in first"}
    assert client.get("/acp/agents", headers={"Authorization": "Bearer ok"}).status_code == 200
    assert client.get("/boom").data == b"host handler"


def test_a_blueprint_hook_and_after_request_see_the_api() -> None:
    app = Flask(__name__)
    ACP(app, demo_registry())
    seen: list[str | None] = []

    @app.after_request
    def tag(response: Any) -> Any:
        seen.append(request.blueprint)
        response.headers["X-Host"] = "yes"
        return response

    response = app.test_client().get("/acp/ping")
    assert response.headers["X-Host"] == "yes"
    assert seen == ["acp"]


def test_the_owner_comes_from_the_host_auth() -> None:
    app = Flask(__name__)

    @app.before_request
    def login() -> None:
        g.user_id = request.headers.get("X-User")

    ACP(app, demo_registry(), owner=lambda: g.user_id)
    run_id = run(app, "echo", **{"X-User": "alice"})["run_id"]
    client = app.test_client()
    assert client.get(f"/acp/runs/{run_id}", headers={"X-User": "alice"}).status_code == 200
    assert client.get(f"/acp/runs/{run_id}", headers={"X-User": "bob"}).status_code == 404


def test_async_agents_and_streams_in_process() -> None:
    app = Flask(__name__)
    ACP(app, demo_registry())
    response = app.test_client().post("/acp/runs", json=run_body("chunks", "200", mode="stream"))
    try:
        data = response.get_data()
    finally:
        response.close()
    assert response.status_code == 200
    assert data.count(b'"type":"message.part"') == 200
    assert data.rstrip().endswith(b"}")
    assert b'"run.completed"' in data


def test_cli_lists_the_agents() -> None:
    app = Flask(__name__)
    ACP(app, registry_for_tests())
    result = app.test_cli_runner().invoke(args=["acp", "agents"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    names = [line.split()[0] for line in lines]
    assert names[:2] == ["echo", "sync-echo"]
    assert "blocker" in names and "configured-gen" in names
    assert "echo                     Echoes every input message back." in lines


def test_a_sync_agent_without_a_context_argument() -> None:
    agents = AgentRegistry()

    @agents.agent()
    def plain(input: list[Any]) -> str:
        """Takes no context."""
        return "plain"

    app = Flask(__name__)
    ACP(app, agents)
    body = {"agent_name": "plain", "input": [message("hi")]}
    assert texts(json_of(app.test_client().post("/acp/runs", json=body))) == ["plain"]


class _SharedStore:
    shared = True


@pytest.mark.parametrize(
    ("environ", "argv", "count"),
    [
        ({}, [], None),
        ({"WEB_CONCURRENCY": "3"}, [], 3),
        ({"SERVER_SOFTWARE": "gunicorn/23.0.0"}, ["gunicorn", "-w", "4", "app:app"], 4),
        ({"SERVER_SOFTWARE": "gunicorn/23.0.0"}, ["gunicorn", "--workers=2", "app:app"], 2),
        (
            {"SERVER_SOFTWARE": "gunicorn/23.0.0", "GUNICORN_CMD_ARGS": "--workers 5"},
            ["gunicorn", "app:app"],
            5,
        ),
        ({"SERVER_SOFTWARE": "gunicorn/23.0.0", "GUNICORN_CMD_ARGS": "-w 5"}, ["gunicorn", "-w", "1"], 1),
        ({"SERVER_SOFTWARE": "gunicorn/23.0.0", "WEB_CONCURRENCY": "6"}, ["gunicorn", "app:app"], 6),
        ({"SERVER_SOFTWARE": "Werkzeug/3.1"}, ["flask", "-w", "4"], None),
    ],
)
def test_worker_count(environ: dict[str, str], argv: list[str], count: int | None) -> None:
    assert server_worker_count(environ, argv) == count


def test_several_workers_with_the_memory_store_warn(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    monkeypatch.delenv("SERVER_SOFTWARE", raising=False)
    with caplog.at_level(logging.WARNING, logger="acp_adapters"):
        ACP(Flask(__name__), demo_registry())
    warnings = [r for r in caplog.records if "worker processes" in r.getMessage()]
    assert len(warnings) == 1
    assert "4 worker processes" in warnings[0].getMessage()
    assert "RedisStore" in warnings[0].getMessage()
    store: Any = _SharedStore()
    assert not warn_if_store_not_shared(store, {"WEB_CONCURRENCY": "4"})
    assert not warn_if_store_not_shared(None, {"WEB_CONCURRENCY": "1"})
    assert warn_if_store_not_shared(None, {"WEB_CONCURRENCY": "2"})
    assert isinstance(store, object) and not isinstance(store, Store)


def test_acp_store_in_app_config_picks_the_store() -> None:
    from flask import Flask

    from acp_adapters.core.memory_store import MemoryStore
    from acp_adapters.flask import ACP
    from acp_adapters.stores.redis import RedisStore
    from example_agents import demo_registry

    for url, kind in (("memory://", MemoryStore), ("redis://127.0.0.1:6379/0", RedisStore)):
        app = Flask(__name__)
        app.config["ACP_STORE"] = url
        ACP(app, demo_registry())
        assert isinstance(ACP.state(app).service.store, kind)  # nothing connects before the first request


def test_the_authorize_hook_sees_the_flask_request_and_its_errors_are_acp_errors() -> None:
    from acp_adapters.core.errors import AuthenticationRequired, PermissionRequired
    from acp_adapters.core.http import Request

    seen: list[tuple[str | None, str | None]] = []

    def authorize(neutral: Request, agent: str | None) -> None:
        token = request.headers.get("X-Token")  # Flask's request, in the hook's copy of its context
        seen.append((token, agent))
        assert neutral.native.headers.get("X-Token") == token
        if token is None:
            raise AuthenticationRequired(challenge='Bearer realm="acp"')
        if agent == "failer":
            raise PermissionRequired("no failing here")

    app = Flask(__name__)
    app.config["ACP_CORS_ORIGINS"] = ["https://app.example"]
    ACP(app, demo_registry(), authorize=authorize)
    client = app.test_client()
    denied = client.get("/acp/agents", headers={"Origin": "https://app.example"})
    assert denied.status_code == 401 and json_of(denied)["code"] == "invalid_input"
    assert denied.headers["WWW-Authenticate"] == 'Bearer realm="acp"'
    assert denied.headers["Access-Control-Allow-Origin"] == "https://app.example"
    names = [
        agent["name"] for agent in json_of(client.get("/acp/agents", headers={"X-Token": "t"}))["agents"]
    ]
    assert "failer" not in names and "echo" in names
    assert client.post("/acp/runs", json=run_body("failer"), headers={"X-Token": "t"}).status_code == 403
    assert run(app, "echo", "hi", **{"X-Token": "t"})["status"] == "completed"
    assert ("t", "echo") in seen and client.get("/acp/ping").status_code == 200


def test_a_body_declared_as_text_is_a_415() -> None:
    app = Flask(__name__)
    ACP(app, demo_registry())
    response = app.test_client().post("/acp/runs", data=b"{}", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415 and json_of(response)["data"] == {"content_type": "text/plain"}


def test_several_mounts_in_one_app() -> None:
    app = Flask(__name__)
    public, private = AgentRegistry(), AgentRegistry()

    @public.agent()
    def hello(input: list[Any]) -> str:
        return "public"

    @private.agent()
    def secret(input: list[Any]) -> str:
        return "private"

    ACP(app, public)
    ACP(app, private, name="acp-private", url_prefix="/acp-private")
    client = app.test_client()
    assert [a["name"] for a in json_of(client.get("/acp/agents"))["agents"]] == ["hello"]
    assert [a["name"] for a in json_of(client.get("/acp-private/agents"))["agents"]] == ["secret"]
    assert texts(run(app, "secret", "x", prefix="/acp-private")) == ["private"]
    assert client.post("/acp/runs", json=run_body("secret", "x")).status_code == 404
    assert ACP.state(app, "acp-private").url_prefix == "/acp-private"
    assert ACP.state(app).service.registry is public
    cli = app.test_cli_runner().invoke(args=["acp-private", "agents"])
    assert cli.output.split() == ["secret"]


def test_a_second_mount_under_a_name_already_used_says_how_to_name_it() -> None:
    app = Flask(__name__)
    ACP(app, AgentRegistry())
    with pytest.raises(ValueError, match=r"name='acp-private'"):
        ACP(app, AgentRegistry(), url_prefix="/other")
    with pytest.raises(ValueError, match="without dots"):
        ACP(Flask(__name__), AgentRegistry(), name="acp.private")


def test_a_named_mount_defaults_to_its_name_as_prefix() -> None:
    app = Flask(__name__)
    app.config["ACP_URL_PREFIX"] = "/api/acp"
    ACP(app, AgentRegistry())
    ACP(app, AgentRegistry(), name="acp-admin")
    assert ACP.state(app).url_prefix == "/api/acp"
    assert ACP.state(app, "acp-admin").url_prefix == "/acp-admin"


@pytest.mark.parametrize(
    ("configured", "origins"),
    [
        ("*", ("*",)),
        ("https://a.example, https://b.example", ("https://a.example", "https://b.example")),
        (["https://a.example"], ("https://a.example",)),
    ],
)
def test_cors_origins_as_a_string_as_the_docs_say(configured: Any, origins: tuple[str, ...]) -> None:
    app = Flask(__name__)
    app.config["ACP_CORS_ORIGINS"] = configured
    ACP(app, demo_registry())
    assert ACP.state(app).service.settings.cors_origins == origins
    response = app.test_client().get("/acp/agents", headers={"Origin": "https://a.example"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "https://a.example")
