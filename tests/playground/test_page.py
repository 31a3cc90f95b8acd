"""The playground page as the core serves it (no browser): off by default and then a 404 like any unknown
path, on by ``Settings.playground`` (``ACP_PLAYGROUND=1``), its assets from the package with their content
types and a strict Content-Security-Policy, open like ``/ping`` while the API stays behind ``authorize``.

The browser tests (``test_browser.py``) drive the page itself in every framework.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib.resources import files

import pytest
from starlette.testclient import TestClient

from acp_adapters import AgentRegistry, Settings
from acp_adapters.asgi import ACPApp
from acp_adapters.core.errors import AuthenticationRequired
from acp_adapters.core.http import Request
from acp_adapters.core.playground import CONTENT_SECURITY_POLICY

ASSETS = {
    "/playground": "text/html; charset=utf-8",
    "/playground/app.js": "text/javascript; charset=utf-8",
    "/playground/app.css": "text/css; charset=utf-8",
}


def _registry() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    def echo(input: list[object]) -> str:
        """Says ok."""
        return "ok"

    return agents


def _nobody(request: Request, agent: str | None) -> None:
    raise AuthenticationRequired("send a token", challenge='Bearer realm="acp"')


def _client(**settings: object) -> Iterator[TestClient]:
    app = ACPApp(_registry(), settings=Settings(**settings))  # type: ignore[arg-type]
    with TestClient(app, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def off() -> Iterator[TestClient]:
    yield from _client()


@pytest.fixture
def on() -> Iterator[TestClient]:
    yield from _client(playground=True)


def test_off_by_default_the_playground_is_a_404_like_any_unknown_path(off: TestClient) -> None:
    assert Settings().playground is False
    unknown = off.get("/no-such-page")
    assert unknown.status_code == 404
    for method, path in [("GET", "/playground"), ("GET", "/playground/app.js"), ("POST", "/playground")]:
        answer = off.request(method, path, json={} if method == "POST" else None)
        assert answer.status_code == 404, (method, path)
        assert answer.json() == {"code": "not_found", "message": f"no such path: {path}"}


def test_off_it_is_a_404_even_behind_an_authorize_hook_that_refuses_everyone() -> None:
    app = ACPApp(_registry(), authorize=_nobody)
    with TestClient(app) as client:
        assert client.get("/playground").status_code == 404
        assert client.get("/agents").status_code == 401


@pytest.mark.parametrize(("path", "content_type"), ASSETS.items())
def test_on_the_page_and_its_assets_come_from_the_package_under_a_strict_policy(
    on: TestClient, path: str, content_type: str
) -> None:
    answer = on.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == content_type
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    filename = {"/playground": "index.html"}.get(path, path.rsplit("/", 1)[-1])
    assert answer.content == (files("acp_adapters") / "playground" / filename).read_bytes()
    assert on.head(path).status_code == 200


def test_the_policy_allows_only_the_pages_own_script_style_and_origin() -> None:
    directives = dict(item.strip().split(" ", 1) for item in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no inline script, no eval
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["base-uri"] == "'none'"


def test_no_asset_names_another_origin_nor_uses_inline_script_or_html_injection() -> None:
    folder = files("acp_adapters") / "playground"
    for name in ("index.html", "app.js", "app.css"):
        text = (folder / name).read_text()
        assert not re.search(r"https?://", text), name  # no CDN: everything is in the package
    page = (folder / "index.html").read_text()
    assert re.findall(r"<script[^>]*>", page) == ['<script type="module" src="playground/app.js">']
    assert " style=" not in page and "<style" not in page
    script = (folder / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink  # what agents send is shown as text


def test_a_slash_after_playground_redirects_to_the_page_and_unknown_assets_are_404(on: TestClient) -> None:
    answer = on.get("/playground/", follow_redirects=False)
    assert answer.status_code == 308
    assert answer.headers["location"] == "../playground"
    missing = on.get("/playground/secrets.txt")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    assert on.post("/playground", json={}).status_code == 405


def test_the_page_is_open_like_ping_while_the_api_stays_behind_authorize() -> None:
    app = ACPApp(_registry(), settings=Settings(playground=True), authorize=_nobody)
    with TestClient(app) as client:
        assert client.get("/playground").status_code == 200
        assert client.get("/playground/app.js").status_code == 200
        refused = client.get("/agents")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Bearer realm="acp"'


def test_the_setting_is_checked_and_read_from_acp_playground() -> None:
    assert Settings.from_env({"ACP_PLAYGROUND": "1"}).playground is True
    assert Settings.from_env({"ACP_PLAYGROUND": "0"}).playground is False
    assert Settings.from_mapping({"playground": True}).playground is True
    with pytest.raises(ValueError, match="ACP_PLAYGROUND"):
        Settings.from_env({"ACP_PLAYGROUND": "maybe"})
    with pytest.raises(ValueError, match="playground must be True or False"):
        Settings(playground="yes")  # type: ignore[arg-type]
