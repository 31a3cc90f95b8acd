"""The Flask and Django A2A mounts in process: one engine with their ACP mount (a task answered over one
protocol, read over the other), Django under WSGI and ASGI, refusals before the request is handed over
(the ACP site's guard) rendered as A2A errors, and the arguments they refuse."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal
from flask import Flask

from acp_adapters.a2a.flask import A2A
from acp_adapters.flask import ACP
from example_agents import demo_registry
from tests.deployments.base import ContractClient
from tests.deployments.django import DjangoAsyncContractClient, DjangoContractClient, example_sites

V1 = {"A2A-Version": "1.0"}


def _rpc(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}


def _message(text: str, **ids: str) -> dict[str, Any]:
    return {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": text}], **ids}


def _ask_then_answer(a2a: ContractClient, acp: ContractClient) -> None:
    """A task asks for input over A2A, is answered over A2A, and is read over ACP."""
    asked = a2a.request("POST", "/awaiter", json=_rpc("SendMessage", {"message": _message("go")}), headers=V1)
    task = asked.json()["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    answer = _rpc("SendMessage", {"message": _message("yes", taskId=task["id"])})
    done = a2a.request("POST", "/awaiter", json=answer, headers=V1).json()["result"]["task"]
    assert done["status"]["state"] == "TASK_STATE_COMPLETED"
    run = acp.request("GET", f"/runs/{task['id']}").json()
    assert run["status"] == "completed" and run["output"][-1]["parts"][0]["content"] == "received: yes"


# Flask ---------------------------------------------------------------------------------------------
def test_flask_mount_shares_the_engine_of_its_acp_mount() -> None:
    app = Flask(__name__)
    acp = ACP(app, demo_registry())
    A2A(app, acp)
    client = app.test_client()
    card = client.get("/a2a/echo/.well-known/agent-card.json").get_json()
    assert card["supportedInterfaces"][0]["url"] == "http://localhost/a2a/echo"
    asked = client.post("/a2a/awaiter", json=_rpc("SendMessage", {"message": _message("go")}), headers=V1)
    task = asked.get_json()["result"]["task"]
    answer = _rpc("SendMessage", {"message": _message("ok", taskId=task["id"])})
    assert client.post("/a2a/awaiter", json=answer).get_json()["result"]["task"]["status"]["state"] == (
        "TASK_STATE_COMPLETED"
    )
    assert client.get(f"/acp/runs/{task['id']}").get_json()["status"] == "completed"
    streamed = client.post("/a2a/chunks/message:stream", json={"message": _message("2")})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.get_data().count(b"artifactUpdate") == 2


def test_flask_mount_refuses_what_cannot_work() -> None:
    app = Flask(__name__)
    with pytest.raises(TypeError, match="ACP extension"):
        A2A(app, demo_registry())  # type: ignore[arg-type]
    acp = ACP(registry=demo_registry())
    with pytest.raises(ValueError, match="init_app"):
        A2A(app, acp)  # its ACP mount is not on the app yet
    acp.init_app(app)
    A2A(app, acp)
    with pytest.raises(ValueError, match="already"):
        A2A(app, acp)


# Django --------------------------------------------------------------------------------------------
@pytest.fixture
def _fresh_sites() -> Iterator[None]:
    for site in example_sites():
        site.close()
    yield
    for site in example_sites():
        site.close()


@pytest.mark.usefixtures("_fresh_sites")
def test_django_mount_under_wsgi() -> None:
    _ask_then_answer(DjangoContractClient("/a2a"), DjangoContractClient("/acp"))


@pytest.mark.usefixtures("_fresh_sites")
def test_django_mount_under_asgi() -> None:
    with start_blocking_portal() as portal:
        try:
            _ask_then_answer(
                DjangoAsyncContractClient(portal, "/a2a"), DjangoAsyncContractClient(portal, "/acp")
            )
        finally:
            for site in example_sites():
                portal.call(site.aclose)


@pytest.mark.usefixtures("_fresh_sites")
def test_django_guard_refusals_are_a2a_errors() -> None:
    private = DjangoContractClient("/a2a-private")
    refused = private.request(
        "POST", "/whoami", json=_rpc("SendMessage", {"message": _message("?")}), headers=V1
    )
    assert refused.status in (401, 403)
    assert refused.json()["jsonrpc"] == "2.0" and refused.json()["error"]["code"] == -32600
    card = private.request("GET", "/whoami/.well-known/agent-card.json")
    assert card.status in (401, 403) and card.json()["error"]["details"][0]["reason"] in (
        "UNAUTHENTICATED",
        "PERMISSION_DENIED",
    )


def test_django_mount_refuses_what_cannot_work() -> None:
    from acp_adapters.a2a.django import A2ASite

    with pytest.raises(TypeError, match="ACPSite"):
        A2ASite(demo_registry())  # type: ignore[arg-type]
