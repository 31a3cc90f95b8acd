"""Each example started as a real server with ``ACP_DEMO_TOKENS`` and ``ACP_*`` settings in its environment.

``/acp-private`` lets in only holders of a known bearer token (401 with ``WWW-Authenticate``
otherwise) and scopes runs, sessions and resources to the token's owner: another owner, or anyone
on the open mount ``/acp``, gets the same 404 as for something that does not exist. ``/acp`` stays
open. ``ACP_MAX_BODY_SIZE`` and ``ACP_MAX_RUN_DURATION`` reach the app (``Settings.from_env``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.deployments import django, flask, starlette
from tests.deployments.base import HttpResult, HttpxContractClient, Target
from tests.helpers import acp_error, ok_json, output_texts, run_body

pytestmark = pytest.mark.slow

TOKENS = {"alice": "token-a", "bob": "token-b"}
MAX_BODY_SIZE = 65_536
MAX_RUN_DURATION = 2.0
ENV = {
    "ACP_DEMO_TOKENS": ",".join(f"{name}={token}" for name, token in TOKENS.items()),
    "ACP_MAX_BODY_SIZE": str(MAX_BODY_SIZE),
    "ACP_MAX_RUN_DURATION": str(MAX_RUN_DURATION),
}
CHALLENGE = 'Bearer realm="acp"'

Start = Callable[..., AbstractContextManager[Target]]
EXAMPLES: dict[str, Start] = {
    "starlette-uvicorn": starlette.uvicorn,
    "flask-gunicorn": flask.gunicorn,
    "django-gunicorn": django.gunicorn,
    "django-uvicorn": django.uvicorn,
}


class Caller:
    """Requests to one mount of a started example, as one caller (a bearer token, or none)."""

    def __init__(self, client: httpx.Client, target: Target, mount: str, token: str | None) -> None:
        self.base_url = target.base_url.removesuffix("/acp") + mount  # the servers mount at /acp
        self.client = HttpxContractClient(client, self.base_url)
        self.token = token

    def request(self, method: str, path: str, **options: Any) -> HttpResult:
        headers = dict(options.pop("headers", None) or {})
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        return self.client.request(method, path, headers=headers, **options)

    def run(self, agent: str, *texts: str, **extra: Any) -> dict[str, Any]:
        answer = self.request("POST", "/runs", json=run_body(agent, *texts, **extra))
        return dict(ok_json(answer, 200, "Run"))


@dataclass
class Example:
    """A started example and its callers: alice, bob, anonymous on ``/acp-private``, anyone on ``/acp``."""

    target: Target
    http: httpx.Client
    alice: Caller
    bob: Caller
    anonymous: Caller
    open: Caller

    def caller(self, token: str | None) -> Caller:
        """A caller of ``/acp-private`` with this token."""
        return Caller(self.http, self.target, "/acp-private", token)


@pytest.fixture(scope="module", params=sorted(EXAMPLES))
def example(request: pytest.FixtureRequest) -> Iterator[Example]:
    with EXAMPLES[request.param](env=ENV) as target, httpx.Client(timeout=60.0) as client:
        yield Example(
            target,
            client,
            alice=Caller(client, target, "/acp-private", TOKENS["alice"]),
            bob=Caller(client, target, "/acp-private", TOKENS["bob"]),
            anonymous=Caller(client, target, "/acp-private", None),
            open=Caller(client, target, "/acp", None),
        )


def refused(answer: HttpResult) -> None:
    acp_error(answer, 401, "invalid_input")
    assert answer.headers.get("www-authenticate") == CHALLENGE, answer.headers


def test_without_a_known_token_the_private_mount_answers_401(example: Example) -> None:
    for token in (None, "token-c", "token-a-and-more", "Token-A"):
        caller = example.caller(token)
        refused(caller.request("GET", "/agents"))
        refused(caller.request("GET", "/agents/echo"))
        refused(caller.request("POST", "/runs", json=run_body("echo", "hi")))
        refused(caller.request("GET", f"/runs/{uuid.uuid4()}"))
    # Not a bearer token at all.
    for header in ("token-a", "Basic dG9rZW4tYQ==", "Bearer", "Bearer token-a token-b"):
        answer = example.anonymous.request("GET", "/agents", headers={"Authorization": header})
        refused(answer)


def test_a_token_holder_is_its_owner(example: Example) -> None:
    agents = ok_json(example.alice.request("GET", "/agents"), 200, "AgentsListResponse")
    assert {"echo", "history-echo", "whoami"} <= {agent["name"] for agent in agents["agents"]}
    assert output_texts(example.alice.run("whoami", "?")) == ["you are alice"]
    assert output_texts(example.bob.run("whoami", "?")) == ["you are bob"]


def test_the_open_mount_stays_open(example: Example) -> None:
    caller = example.open
    assert caller.request("GET", "/agents").status == 200
    assert output_texts(caller.run("echo", "hi")) == ["hi"]
    assert "whoami" not in {a["name"] for a in caller.request("GET", "/agents").json()["agents"]}


def test_a_run_is_its_owners_only(example: Example) -> None:
    run = example.alice.run("echo", "alice's secret")
    path = f"/runs/{run['run_id']}"
    assert ok_json(example.alice.request("GET", path), 200, "Run")["run_id"] == run["run_id"]
    stream = {"accept": "text/event-stream"}
    assert example.alice.request("GET", path + "/events", headers=stream).status == 200
    for other in (example.bob, example.open):
        acp_error(other.request("GET", path), 404, "not_found")
        acp_error(other.request("GET", path + "/events"), 404, "not_found")
        acp_error(other.request("GET", path + "/events", headers=stream), 404, "not_found")
        acp_error(other.request("POST", path + "/cancel"), 404, "not_found")
    refused(example.anonymous.request("GET", path))


def test_a_session_and_its_resources_are_their_owners_only(example: Example) -> None:
    session_id = str(uuid.uuid4())
    example.alice.run("echo", "alice's secret", session_id=session_id)
    session = ok_json(example.alice.request("GET", f"/sessions/{session_id}"), 200, None)
    urls = [str(url) for url in session["history"]]
    assert len(urls) == 2, session  # the input and the echo
    resource_paths = [url.removeprefix(example.alice.base_url) for url in urls]
    assert all(path.startswith("/resources/") for path in resource_paths), urls
    for path in resource_paths:
        assert "alice's secret" in example.alice.request("GET", path).body.decode()

    for other in (example.bob, example.open):
        acp_error(other.request("GET", f"/sessions/{session_id}"), 404, "not_found")
        for path in resource_paths:
            acp_error(other.request("GET", path), 404, "not_found")
    refused(example.anonymous.request("GET", f"/sessions/{session_id}"))
    refused(example.anonymous.request("GET", resource_paths[0]))

    # Bob naming alice's session gets 404 and writes nothing into it.
    answer = example.bob.request("POST", "/runs", json=run_body("history-echo", "bob", session_id=session_id))
    acp_error(answer, 404, "not_found")
    again = ok_json(example.alice.request("GET", f"/sessions/{session_id}"), 200, None)
    assert [str(url) for url in again["history"]] == urls

    # Nor can he load her resources into a session of his own: they read as missing (skipped).
    body = run_body("history-echo", "bob", session={"id": str(uuid.uuid4()), "history": urls})
    answer = example.bob.request("POST", "/runs", json=body)
    assert output_texts(ok_json(answer, 200, "Run")) == ["bob"]

    # Alice herself goes on with her session.
    texts = output_texts(example.alice.run("history-echo", "more", session_id=session_id))
    assert texts == ["alice's secret", "alice's secret", "more"]


def test_max_body_size_comes_from_the_environment(example: Example) -> None:
    body = run_body("echo", "x" * MAX_BODY_SIZE)
    for caller in (example.open, example.alice):
        answer = caller.request("POST", "/runs", json=body)
        assert acp_error(answer, 413, "invalid_input")["data"] == {"max_body_size": MAX_BODY_SIZE}
    assert output_texts(example.open.run("echo", "x" * (MAX_BODY_SIZE // 2))) == ["x" * (MAX_BODY_SIZE // 2)]


def test_max_run_duration_comes_from_the_environment(example: Example) -> None:
    # slow-echo takes a second per message: five would take five seconds.
    began = time.monotonic()
    run = example.open.run("slow-echo", *"abcde")
    took = time.monotonic() - began
    assert run["status"] == "failed", run
    assert run["error"]["data"] == {"reason": "max_run_duration"}, run
    assert MAX_RUN_DURATION - 0.2 <= took < MAX_RUN_DURATION + 2.0, took
