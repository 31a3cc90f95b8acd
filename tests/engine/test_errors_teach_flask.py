"""Flask's debug mode (``flask run --debug``) turns on the core's, unless ``ACP_DEBUG`` or the
extension's own settings say otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from acp_adapters import AgentRegistry, Settings
from acp_adapters.flask import ACP
from acp_adapters.models import Message


def agents() -> AgentRegistry:
    registry = AgentRegistry()

    @registry.agent()
    def fails(input: list[Message]) -> str:
        raise RuntimeError("the disk is full")

    return registry


def failed_run(debug: bool, config: dict[str, Any] | None = None, settings: Settings | None = None) -> Any:
    app = Flask(__name__)
    app.debug = debug
    app.config.update(config or {})
    acp = ACP(app, agents(), settings=settings)
    try:
        body = {"agent_name": "fails", "mode": "sync", "input": [{"parts": [{"content": "hi"}]}]}
        run = app.test_client().post("/acp/runs", json=body).get_json()
    finally:
        ACP.state(app, acp.name).bridge.close()
    assert run["status"] == "failed"
    return run["error"]


@pytest.mark.parametrize(
    ("debug", "config", "settings", "told"),
    [
        (True, None, None, True),
        (False, None, None, False),
        (True, {"ACP_DEBUG": False}, None, False),
        (False, {"ACP_DEBUG": True}, None, True),
        (True, None, Settings(), False),  # settings of its own: they decide
    ],
)
def test_debug_follows_the_flask_app(
    debug: bool, config: dict[str, Any] | None, settings: Settings | None, told: bool
) -> None:
    error = failed_run(debug, config, settings)
    if told:
        assert error["message"] == "the agent failed: RuntimeError: the disk is full"
        assert error["data"] == {"exception": "RuntimeError"}
    else:
        assert error == {"code": "server_error", "message": "the agent failed with an unexpected error"}
