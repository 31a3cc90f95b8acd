"""The Django traps of a first hour, each caught by a system check that says what to write instead,
or working: a mount without its trailing slash (E009), no ``ACP_ADAPTERS`` at all (E010), ``REGISTRY``
naming the module of the registry (E005), and the views under ``LoginRequiredMiddleware``."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client
from django.urls import include, path, re_path

from acp_adapters import AgentRegistry
from acp_adapters.django import ACPSite, login_required
from acp_adapters.django.checks import check_mounts, check_settings
from acp_adapters.django.conf import ACPConfigurationError, conf
from acp_adapters.django.views import site
from tests.django.conftest import Served, needs_login_required_middleware
from tests.helpers import acp_error, ok_json, run_body

pytestmark = pytest.mark.django

DEFAULT_MOUNT = "acp_adapters.django.urls"


def urlconf(*patterns: Any) -> types.ModuleType:
    module = types.ModuleType("trap_urls")
    module.urlpatterns = list(patterns)  # type: ignore[attr-defined]  # a URLconf built at run time
    return module


def mount_problems(settings: Any, *patterns: Any) -> list[tuple[str, str, str]]:
    settings.ROOT_URLCONF = urlconf(*patterns)
    return [
        ((error.id or "").removeprefix("acp_adapters."), error.msg, error.hint or "")
        for error in check_mounts()
    ]


@pytest.fixture
def no_acp_adapters(settings: Any) -> Iterator[Any]:
    """Settings without ``ACP_ADAPTERS`` (pytest-django's ``del`` sends no ``setting_changed``)."""
    del settings.ACP_ADAPTERS
    conf.reload()
    yield settings
    conf.reload()


def test_the_example_urls_pass() -> None:
    assert check_mounts() == []


@pytest.mark.parametrize(
    ("pattern", "served", "fix"),
    [
        (path("acp", include(DEFAULT_MOUNT)), "/acpagents", "path('acp/', ...)"),
        (path("api/", include([path("acp", site.urls)])), "/api/acpagents", "path('acp/', ...)"),
        (path("api", include([path("acp/", site.urls)])), "/apiacp/agents", "path('api/', ...)"),
        (re_path(r"^acp", include(DEFAULT_MOUNT)), "/acpagents", "path('acp/', ...)"),
    ],
)
def test_a_mount_without_a_trailing_slash_is_an_error(
    settings: Any, pattern: Any, served: str, fix: str
) -> None:
    found = mount_problems(settings, pattern)
    assert [found_id for found_id, _, _ in found] == ["E009"], found
    assert f"would serve {served} instead of " in found[0][1], found
    assert fix in found[0][2]


def test_mounts_with_their_slash_pass(settings: Any) -> None:
    assert mount_problems(settings, path("acp/", include(DEFAULT_MOUNT))) == []
    assert mount_problems(settings, path("", include(DEFAULT_MOUNT))) == []
    assert mount_problems(settings, re_path(r"^api/v1/", include([path("acp/", site.urls)]))) == []


def test_manage_py_check_stops_at_a_mount_without_its_slash(settings: Any) -> None:
    settings.ROOT_URLCONF = urlconf(path("acp", include(DEFAULT_MOUNT)))
    with pytest.raises(SystemCheckError, match=r"acp_adapters\.E009.*/acpagents"):
        call_command("check")


def test_no_acp_adapters_setting_with_the_default_mount_is_an_error(no_acp_adapters: Any) -> None:
    settings = no_acp_adapters
    assert check_settings() == []
    found = mount_problems(settings, path("acp/", include(DEFAULT_MOUNT)))
    assert [found_id for found_id, _, _ in found] == ["E010"]
    assert "ACP_ADAPTERS = {'REGISTRY': 'mysite.agents.registry'}" in found[0][2]
    # What a request would have met: the same error, not a bare KeyError.
    with pytest.raises(ACPConfigurationError, match="ACP_ADAPTERS is not set") as raised:
        _ = conf.registry
    assert raised.value.id == "acp_adapters.E010"


def test_no_acp_adapters_setting_is_fine_for_mounts_given_their_registry(no_acp_adapters: Any) -> None:
    settings = no_acp_adapters
    own = ACPSite(AgentRegistry(), name="own")
    assert mount_problems(settings, path("acp/", own.urls)) == []
    assert own.settings.max_body_size > 0  # the defaults, without ACP_ADAPTERS


@pytest.mark.parametrize("imported_first", [False, True])
def test_registry_naming_a_module_says_which_name_to_write(
    settings: Any, imported_first: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    import tests.django

    if not imported_first:  # import_string fails then, where a module that is imported is found
        monkeypatch.delitem(sys.modules, "tests.django.agents_module", raising=False)
        monkeypatch.delattr(tests.django, "agents_module", raising=False)
    else:
        import tests.django.agents_module
    settings.ACP_ADAPTERS = {"REGISTRY": "tests.django.agents_module"}
    found = [(e.id, e.msg) for e in check_settings()]
    assert found == [
        (
            "acp_adapters.E005",
            "ACP_ADAPTERS['REGISTRY'] must name an AgentRegistry (for example "
            "'tests.django.agents_module.registry'), 'tests.django.agents_module' is a module.",
        )
    ]


def test_registry_naming_a_module_without_a_registry_gives_the_general_example(settings: Any) -> None:
    settings.ACP_ADAPTERS = {"REGISTRY": "tests.django.probe"}
    (error,) = check_settings()
    assert error.id == "acp_adapters.E005"
    assert "(for example 'mysite.agents.registry'), 'tests.django.probe' is a module" in error.msg


LOGIN_REQUIRED = "django.contrib.auth.middleware.LoginRequiredMiddleware"


@needs_login_required_middleware
def test_the_views_work_under_login_required_middleware(served: Served, settings: Any) -> None:
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, LOGIN_REQUIRED]
    public = served.target()
    agents = ok_json(public.client.request("GET", "/agents"), 200, "AgentsListResponse")
    assert agents["agents"]
    run = ok_json(public.client.request("POST", "/runs", json=run_body("echo", "hi")), 200, "Run")
    assert run["status"] == "completed"
    # The guarded mount answers with its own ACP error, not a redirect to the login page.
    refused = acp_error(served.target("/acp-private").client.request("GET", "/agents"), 401)
    assert refused["message"] == "log in, or send a demo token"


@needs_login_required_middleware
def test_a_login_required_guard_under_the_middleware_is_an_acp_401(settings: Any) -> None:
    guarded = ACPSite(AgentRegistry(), guard=login_required, name="guarded")
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, LOGIN_REQUIRED]
    settings.ROOT_URLCONF = urlconf(path("guarded/", guarded.urls))
    try:
        response = Client().get("/guarded/agents")
        assert response.status_code == 401, response
        assert response["Content-Type"].startswith("application/json")
    finally:
        guarded.close()


WITHOUT_THE_DATABASE_APP = """
import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=[
        "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
        "django.contrib.sessions", "django.contrib.messages", "acp_adapters.django",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    ROOT_URLCONF="tests.django.urls_for_subprocess",
    ACP_ADAPTERS={"REGISTRY": "example_agents.demo_registry", "STORE": __STORE__},
    SECRET_KEY="x",
    SILENCED_SYSTEM_CHECKS=["admin.E403", "admin.E408", "admin.E409", "admin.E410"],  # no templates here
)
django.setup()
from django.contrib import admin
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection

call_command("migrate", verbosity=0)
print("tables", sorted(t for t in connection.introspection.table_names() if t.startswith("acp")))
print("admin", sorted(m._meta.label for m in admin.site._registry if m._meta.app_label.startswith("acp")))
try:
    call_command("check")
    print("check ok")
except SystemCheckError as exc:
    print("check", exc)
"""


def run_without_the_database_app(store: str) -> str:
    import subprocess
    import sys
    from pathlib import Path

    script = WITHOUT_THE_DATABASE_APP.replace("__STORE__", repr(store) if store else "None")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_memory_store_brings_no_tables_and_no_admin_pages() -> None:
    out = run_without_the_database_app("")
    assert "tables []" in out and "admin []" in out and "check ok" in out, out


def test_the_database_store_without_its_app_is_an_error_naming_the_app() -> None:
    out = run_without_the_database_app("acp_adapters.django.store.DjangoStore")
    assert "acp_adapters.E011" in out and "add 'acp_adapters.django.db' to INSTALLED_APPS" in out, out


def test_the_database_app_keeps_the_label_of_existing_tables_and_migrations() -> None:
    from django.apps import apps

    from acp_adapters.django.db.models import Run

    assert apps.get_app_config("acp_adapters").name == "acp_adapters.django.db"
    assert Run._meta.db_table == "acp_adapters_run"
