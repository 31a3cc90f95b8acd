"""System checks of ``settings.ACP_ADAPTERS``: each wrong value is reported at start-up with a stable id
and a message that names what is wrong."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from acp_adapters import AgentRegistry, Settings
from acp_adapters.django.checks import check_settings
from acp_adapters.django.conf import ACPConfigurationError, conf

pytestmark = pytest.mark.django

GOOD: dict[str, Any] = {
    "REGISTRY": "example_agents.demo_registry",
    "SETTINGS": "example_agents.DEMO_SETTINGS",
}


def problems(settings: Any, value: Any) -> list[tuple[str, str]]:
    settings.ACP_ADAPTERS = value
    return [((error.id or "").removeprefix("acp_adapters."), error.msg) for error in check_settings()]


def test_the_example_settings_pass(settings: Any) -> None:
    assert check_settings() == []
    assert problems(settings, GOOD) == []
    assert problems(settings, {**GOOD, "STORE": None, "OWNER": None, "GUARD": None}) == []
    assert problems(settings, {"REGISTRY": AgentRegistry(), "SETTINGS": {"await_timeout": 5}}) == []


def test_no_acp_adapters_setting_is_no_error(settings: Any) -> None:
    del settings.ACP_ADAPTERS
    assert check_settings() == []


@pytest.mark.parametrize(
    ("value", "check_id", "words"),  # check_id without its "acp_adapters." prefix
    [
        (["example_agents.demo_registry"], "E001", "must be a dict, not list"),
        ({**GOOD, "REGISTERY": "x", "STORAGE": "y"}, "E002", "unknown key(s): REGISTERY, STORAGE"),
        ({"SETTINGS": {}}, "E003", "['REGISTRY'] is not set"),
        ({"REGISTRY": None}, "E003", "['REGISTRY'] is not set"),
        ({"REGISTRY": "example_agents.no_such_registry"}, "E004", "'example_agents.no_such_registry' cannot"),
        ({"REGISTRY": "no_such_module.agents"}, "E004", "cannot be imported"),
        ({"REGISTRY": "example_agents.DEMO_SETTINGS"}, "E005", "not Settings"),
        ({"REGISTRY": "example_agents.store_from_env"}, "E005", "not NoneType"),
        ({**GOOD, "SETTINGS": {"await_timeot": 5}}, "E006", "unknown ACP setting(s): await_timeot"),
        ({**GOOD, "SETTINGS": {"await_timeout": "soon"}}, "E006", "await_timeout must be a number"),
        ({**GOOD, "SETTINGS": ["await_timeout"]}, "E006", "must be a dict or a Settings"),
        ({**GOOD, "STORE": "example_agents.DEMO_SETTINGS"}, "E007", "must be a Store"),
        ({**GOOD, "STORE": "acp_adapters.AgentRegistry"}, "E007", "must be a Store"),
        ({**GOOD, "OWNER": "example_agents.DEMO_SETTINGS"}, "E008", "['OWNER'] must be a function"),
        ({**GOOD, "GUARD": 42}, "E008", "['GUARD'] must be a function"),
        ({**GOOD, "AUTHORIZE": "example_agents.DEMO_SETTINGS"}, "E008", "['AUTHORIZE'] must be a function"),
        ({**GOOD, "EXECUTOR": "example_agents.DEMO_SETTINGS"}, "E012", "['EXECUTOR'] must be an Executor"),
        ({**GOOD, "EXECUTOR": lambda: "celery"}, "E012", "not str"),
    ],
)
def test_a_wrong_setting_is_reported(settings: Any, value: Any, check_id: str, words: str) -> None:
    found = problems(settings, value)
    assert [found_id for found_id, _ in found] == [check_id], found
    assert words in found[0][1], found


def test_every_wrong_value_is_reported_at_once(settings: Any) -> None:
    found = problems(settings, {"REGISTRY": "nowhere.agents", "SETTINGS": {"x": 1}, "GUARD": 1})
    assert [found_id for found_id, _ in found] == ["E004", "E006", "E008"]


def test_manage_py_check_fails_on_a_wrong_setting(settings: Any) -> None:
    settings.ACP_ADAPTERS = {**GOOD, "SETTINGS": {"max_body_size": -1}}
    with pytest.raises(SystemCheckError, match=r"acp_adapters\.E006.*max_body_size"):
        call_command("check")


def test_a_store_factory_that_returns_no_store_is_an_error_when_called(settings: Any) -> None:
    settings.ACP_ADAPTERS = {**GOOD, "STORE": lambda: "not a store"}
    assert check_settings() == []  # a factory is called when the service starts, not at check time
    factory = conf.store_factory
    assert factory is not None
    with pytest.raises(ACPConfigurationError, match="returned str, not a Store") as raised:
        factory()
    assert raised.value.id == "acp_adapters.E007"


def test_values_are_resolved_once(settings: Any) -> None:
    calls: list[int] = []

    def registry() -> AgentRegistry:
        calls.append(1)
        return AgentRegistry()

    settings.ACP_ADAPTERS = {"REGISTRY": registry, "SETTINGS": Settings(await_timeout=7)}
    assert conf.registry is conf.registry
    assert calls == [1]
    assert conf.settings.await_timeout == 7
