"""Django's ``DEBUG`` turns on the core's debug mode (a failing agent's error says why) unless
``ACP_ADAPTERS["SETTINGS"]`` sets ``debug`` itself."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import RequestFactory

from acp_adapters import AgentRegistry
from acp_adapters.django import ACPSite
from acp_adapters.django.conf import conf
from acp_adapters.models import Message

pytestmark = pytest.mark.django


def failing_site() -> ACPSite:
    agents = AgentRegistry()

    @agents.agent()
    def fails(input: list[Message]) -> str:
        raise RuntimeError("the disk is full")

    return ACPSite(registry=agents, name="acp-debug-test")


def run_fails(site: ACPSite) -> dict[str, Any]:
    body = {"agent_name": "fails", "mode": "sync", "input": [{"parts": [{"content": "hi"}]}]}
    request = RequestFactory().post("/acp/runs", json.dumps(body), content_type="application/json")
    try:
        response = site.sync_view(request, "runs")
    finally:
        site.close()
    run: dict[str, Any] = json.loads(response.content)
    assert run["status"] == "failed"
    return run


def acp_debug() -> bool:
    """The mounts' debug setting, read again after each change of Django's settings."""
    return conf.settings.debug


@pytest.mark.parametrize("acp_settings", [{"await_timeout": 60}, None])
def test_debug_follows_djangos_debug(settings: Any, acp_settings: dict[str, Any] | None) -> None:
    adapters = {key: value for key, value in settings.ACP_ADAPTERS.items() if key != "SETTINGS"}
    settings.ACP_ADAPTERS = adapters if acp_settings is None else {**adapters, "SETTINGS": acp_settings}
    settings.DEBUG = True  # (pytest-django sends setting_changed: the configuration is read again)
    assert acp_debug() is True
    assert run_fails(failing_site())["error"] == {
        "code": "server_error",
        "message": "the agent failed: RuntimeError: the disk is full",
        "data": {"exception": "RuntimeError"},
    }
    settings.DEBUG = False
    assert acp_debug() is False
    error = run_fails(failing_site())["error"]
    assert error["message"] == "the agent failed with an unexpected error" and "data" not in error


def test_the_acp_setting_wins_over_djangos_debug(settings: Any) -> None:
    settings.DEBUG = True
    settings.ACP_ADAPTERS = {**settings.ACP_ADAPTERS, "SETTINGS": {"debug": False}}
    assert acp_debug() is False
    settings.DEBUG = False
    settings.ACP_ADAPTERS = {**settings.ACP_ADAPTERS, "SETTINGS": {"debug": True}}
    assert acp_debug() is True
