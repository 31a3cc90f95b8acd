"""Every adapter's constructor checks its arguments and says what it needs, before any request."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from acp_adapters import ACPService, AgentRegistry, Settings
from acp_adapters.asgi import ACPApp, ACPMiddleware
from acp_adapters.core.store import Store
from acp_adapters.django.views import ACPSite
from acp_adapters.flask import ACP
from acp_adapters.wsgi import ACPWSGIApp, ACPWSGIMiddleware

NEEDS = "needs an AgentRegistry (agents = AgentRegistry(); @agents.agent() def echo(input): ...), not "


def echo(input: Any) -> str:
    return "hi"


async def asgi_app(scope: Any, receive: Any, send: Any) -> None: ...


def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    return []


#: Each constructor, called with a registry as its user would write it.
MAKERS: dict[str, Callable[..., Any]] = {
    "ACPService": lambda registry, **kw: ACPService(registry, **kw),
    "ACPApp": lambda registry, **kw: ACPApp(registry, **kw),
    "ACPMiddleware": lambda registry, **kw: ACPMiddleware(asgi_app, registry, **kw),
    "ACPWSGIApp": lambda registry, **kw: ACPWSGIApp(registry, **kw),
    "ACPWSGIMiddleware": lambda registry, **kw: ACPWSGIMiddleware(wsgi_app, registry, **kw),
    "ACP": lambda registry, **kw: ACP(Flask(__name__), registry, **kw),
    "ACPSite": lambda registry, **kw: ACPSite(registry=registry, **kw),
}


@pytest.mark.parametrize("who", list(MAKERS))
@pytest.mark.parametrize(
    ("registry", "got"),
    [
        (None, "None"),
        ([echo], "list: register agents on a registry with its decorator, and pass the registry"),
        (echo, "function: register agents on a registry with its decorator, and pass the registry"),
        ("x", "str"),
    ],
)
def test_a_registry_of_the_wrong_kind_is_refused_with_the_fix(who: str, registry: Any, got: str) -> None:
    if who == "ACPSite" and registry is None:
        return  # (None: the site takes ACP_ADAPTERS["REGISTRY"], see tests/django)
    if who == "ACP" and registry is None:
        expected = "ACP() needs the registry of agents to serve: ACP(app, registry) or ACP(registry=...)"
    else:
        expected = f"{who} {NEEDS}{got}"
    with pytest.raises(TypeError) as caught:
        MAKERS[who](registry)
    assert str(caught.value) == expected


def test_a_module_holding_a_registry_names_it() -> None:
    module = types.ModuleType("mysite.agents")
    module.agents = AgentRegistry()  # type: ignore[attr-defined]  # a module built at run time
    with pytest.raises(
        TypeError, match=r"not the module mysite.agents: pass the registry in it, mysite.agents.agents$"
    ):
        ACPApp(module)  # type: ignore[arg-type]  # the mistake under test


@pytest.mark.parametrize("who", list(MAKERS))
def test_store_settings_and_hooks_of_the_wrong_kind_are_refused(who: str) -> None:
    make, agents = MAKERS[who], AgentRegistry()
    with pytest.raises(
        TypeError, match=rf"^{who}\(store=...\) needs a Store .* not str: for a URL, store=store_from_url"
    ):
        make(agents, store="redis://localhost:6379/0")
    with pytest.raises(
        TypeError, match=rf"^{who}\(settings=...\) needs a Settings or None, not dict: write Settings"
    ):
        make(agents, settings={"debug": True})
    with pytest.raises(TypeError, match=rf"^{who}\(authorize=...\) needs a function or None, not bool$"):
        make(agents, authorize=True)


@pytest.mark.parametrize(
    "who", ["ACPApp", "ACPMiddleware", "ACPWSGIApp", "ACPWSGIMiddleware", "ACP", "ACPSite"]
)
def test_owner_must_be_a_function(who: str) -> None:
    with pytest.raises(TypeError, match=rf"^{who}\(owner=...\) needs a function or None, not str$"):
        MAKERS[who](AgentRegistry(), owner="user")


@pytest.mark.parametrize(("middleware", "kind"), [(ACPMiddleware, "ASGI"), (ACPWSGIMiddleware, "WSGI")])
def test_a_middleware_wraps_an_app_that_comes_first(middleware: Any, kind: str) -> None:
    agents, name = AgentRegistry(), middleware.__name__
    with pytest.raises(TypeError, match=rf"^{name}\(app, registry\): the {kind} app it wraps comes first"):
        middleware(agents, asgi_app)
    with pytest.raises(TypeError, match=rf"^{name} wraps an {kind} app, {name}\(app, registry\), not None$"):
        middleware(None, agents)
    with pytest.raises(TypeError, match=rf"^{name}\(prefix=...\) needs a URL path such as '/acp', not int$"):
        middleware(asgi_app, agents, prefix=8)


def test_flask_extension_checks_its_app() -> None:
    agents = AgentRegistry()
    with pytest.raises(TypeError, match=r"^ACP\(app, registry\): the Flask app comes first"):
        ACP(agents)  # type: ignore[arg-type]  # the mistake under test
    with pytest.raises(TypeError, match=r"^ACP\(app, registry\) needs a Flask app or None, not str$"):
        ACP("app", agents)  # type: ignore[arg-type]  # the mistake under test
    with pytest.raises(TypeError, match=r"^ACP needs an AgentRegistry .*not str$"):
        ACP(Flask(__name__), "x")  # type: ignore[arg-type]  # the mistake under test
    assert ACP(registry=agents).registry is agents  # the app factory form stays


def test_django_site_checks_its_name() -> None:
    with pytest.raises(TypeError, match=r"^ACPSite\(name=...\) needs a URL namespace such as 'acp', not ''$"):
        ACPSite(registry=AgentRegistry(), name="")


def test_right_arguments_still_build() -> None:
    agents = AgentRegistry()
    agents.add(echo)
    app = ACPApp(agents, settings=Settings(debug=True), owner=lambda scope: None)
    assert app.service.settings.debug is True and isinstance(app.service.store, Store)
