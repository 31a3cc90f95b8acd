"""``{prefix}/openapi.json`` and :func:`acp_adapters.openapi.add_acp_paths` (FastAPI's ``/docs``).

Every document is checked with openapi-spec-validator (OpenAPI 3.1) and loaded by schemathesis, as a
client generator or a fuzzer would take it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
import yaml
from fastapi import FastAPI
from openapi_spec_validator import OpenAPIV31SpecValidator
from pydantic import BaseModel
from schemathesis.core.result import Ok
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from acp_adapters import ACPService, AgentRegistry, Settings
from acp_adapters.asgi import ACPApp
from acp_adapters.core.errors import AuthenticationRequired
from acp_adapters.core.http import Request, Response
from acp_adapters.core.openapi import mount_document
from acp_adapters.openapi import add_acp_paths
from example_agents import demo_registry
from tests.helpers import message
from tests.schema import assert_valid, openapi_path

pytestmark = pytest.mark.anyio

#: The operations of ACP 0.2.0's spec: (method, path, operationId).
SPEC_OPERATIONS = {
    ("get", "/ping", "ping"),
    ("get", "/agents", "listAgents"),
    ("get", "/agents/{name}", "getAgent"),
    ("post", "/runs", "createRun"),
    ("get", "/runs/{run_id}", "getRun"),
    ("post", "/runs/{run_id}", "resumeRun"),
    ("post", "/runs/{run_id}/cancel", "cancelRun"),
    ("get", "/runs/{run_id}/events", "listRunEvents"),
    ("get", "/session/{session_id}", "getSession"),
}


def check_openapi(document: dict[str, Any]) -> None:
    """The document is valid OpenAPI 3.1, and schemathesis loads every operation of it."""
    errors = [str(error) for error in OpenAPIV31SpecValidator(document).iter_errors()]
    assert not errors, errors
    loaded = schemathesis.openapi.from_dict(document)
    results = list(loaded.get_all_operations())
    failed = [result for result in results if not isinstance(result, Ok)]
    assert not failed, failed
    assert len(results) >= len(SPEC_OPERATIONS)


def operations(document: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (method, path, operation["operationId"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


async def get(service: ACPService, path: str, base_url: str = "http://test/acp") -> Response:
    response = await service.handle(Request("GET", path, base_url, "", {}, b"", None))
    assert isinstance(response, Response)
    return response


def test_the_shipped_spec_is_the_official_one() -> None:
    # acp-openapi.json is openapi.yaml converted, never edited: the corrections are made in code.
    from importlib import resources

    shipped = json.loads(resources.files("acp_adapters.core").joinpath("acp-openapi.json").read_text())
    assert shipped == yaml.safe_load(openapi_path().read_text())


async def test_the_mount_serves_a_valid_document_naming_its_agents() -> None:
    registry = demo_registry()
    service = ACPService(registry)
    try:
        response = await get(service, "/openapi.json")
        assert response.status == 200
        assert ("content-type", "application/json") in response.headers
        document = json.loads(response.body)
        check_openapi(document)
        assert operations(document) == SPEC_OPERATIONS
        names = [agent.name for agent in registry]
        agent_name = document["components"]["schemas"]["AgentName"]
        assert agent_name["enum"] == names and agent_name["example"] == names[0]
        assert document["servers"] == [{"url": "http://test/acp", "description": "this mount of the ACP API"}]
        # The spec's slips, corrected: every path parameter declared under its name.
        session = document["paths"]["/session/{session_id}"]["get"]["parameters"]
        assert [parameter["name"] for parameter in session] == ["session_id"]
        resume = document["paths"]["/runs/{run_id}"]["post"]["parameters"]
        assert [parameter["name"] for parameter in resume] == ["run_id"]
        # nullable (OpenAPI 3.0) written as 3.1 does: a null error is valid, as the server sends it.
        run = document["components"]["schemas"]["Run"]["properties"]
        assert {"type": "null"} in run["error"]["anyOf"]
        assert "nullable" not in json.dumps(document)
    finally:
        await service.aclose()


async def test_the_enum_follows_what_the_caller_may_see() -> None:
    def authorize(request: Request, agent: str | None) -> None:
        if request.headers.get("authorization") is None:
            raise AuthenticationRequired("who are you?")
        if agent is not None and agent != "echo":
            raise AuthenticationRequired("echo only")

    service = ACPService(demo_registry(), authorize=authorize)
    try:
        assert (await get(service, "/openapi.json")).status == 401
        request = Request("GET", "/openapi.json", "http://test/acp", "", {"authorization": "x"}, b"", None)
        response = await service.handle(request)
        assert isinstance(response, Response) and response.status == 200
        document = json.loads(response.body)
        assert document["components"]["schemas"]["AgentName"]["enum"] == ["echo"]
    finally:
        await service.aclose()


async def test_public_url_names_the_server_and_a_setting_turns_the_document_off() -> None:
    public = ACPService(demo_registry(), settings=Settings(public_url="https://api.example.com/acp/"))
    off = ACPService(demo_registry(), settings=Settings(openapi_document=False))
    try:
        document = json.loads((await get(public, "/openapi.json")).body)
        assert document["servers"][0]["url"] == "https://api.example.com/acp"
        response = await get(off, "/openapi.json")
        assert response.status == 404
        assert_valid(json.loads(response.body), "Error")
    finally:
        await public.aclose()
        await off.aclose()


def test_a_registry_without_agents_leaves_the_name_to_its_pattern() -> None:
    document = json.loads(mount_document([], "http://test/acp"))
    check_openapi(document)
    assert "enum" not in document["components"]["schemas"]["AgentName"]


def test_the_document_is_rendered_once_per_mount() -> None:
    assert mount_document(["echo"], "http://a/acp") is mount_document(["echo"], "http://a/acp")


class Run(BaseModel):
    """A model of the host's own, named as one of ACP's."""

    laps: int


def test_add_acp_paths_puts_the_mount_in_fastapi_docs() -> None:
    registry = demo_registry()
    app = FastAPI()

    @app.get("/runs/{run_id}")
    def host_run(run_id: int) -> Run:
        return Run(laps=run_id)

    app.mount("/acp", ACPApp(registry))
    add_acp_paths(app, registry, prefix="/acp")

    with TestClient(app) as client:
        document = client.get("/openapi.json").json()
        check_openapi(document)
        assert client.get("/docs").status_code == 200
        # The host's own path and schema stay as they were; ACP's come beside them, prefixed.
        assert document["paths"]["/runs/{run_id}"]["get"]["operationId"] == "host_run_runs__run_id__get"
        assert document["components"]["schemas"]["Run"]["properties"] == {
            "laps": {"type": "integer", "title": "Laps"}
        }
        acp = {
            (method, path, operation["operationId"])
            for path, item in document["paths"].items()
            if path.startswith("/acp/")
            for method, operation in item.items()
        }
        assert acp == {(m, "/acp" + p, "acp_" + o) for m, p, o in SPEC_OPERATIONS}
        create = document["paths"]["/acp/runs"]["post"]
        assert create["tags"] == ["ACP run"]
        body = create["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/ACPRunCreateRequest"}
        schemas = document["components"]["schemas"]
        assert schemas["ACPAgentName"]["enum"] == [agent.name for agent in registry]
        assert "AgentName" not in schemas
        # The paths it names are the mount's: a run made through them completes.
        run = client.post("/acp/runs", json={"agent_name": "echo", "input": [message("hi")]}).json()
        assert run["status"] == "completed"


def test_add_acp_paths_follows_the_app_when_its_routes_change() -> None:
    registry = AgentRegistry()

    @registry.agent()
    def hello(input: Any) -> str:
        """Hello."""
        return "hello"

    app = FastAPI()
    app.mount("/", ACPApp(registry))
    add_acp_paths(app, registry, prefix="")
    first = app.openapi()
    assert "/agents/{name}" in first["paths"] and app.openapi() is first

    @app.get("/later")
    def later() -> dict[str, str]:
        return {}

    second = app.openapi()
    assert "/later" in second["paths"] and "/agents/{name}" in second["paths"]
    check_openapi(second)


def test_add_acp_paths_is_framework_free() -> None:
    # Any app with an ``openapi()`` method read through the attribute works (the FastAPI contract).
    class Host:
        def openapi(self) -> dict[str, Any]:
            return {"openapi": "3.1.0", "info": {"title": "host", "version": "1"}, "paths": {}}

    host = Host()
    add_acp_paths(host, demo_registry(), prefix="/agents-api/")
    document = host.openapi()
    assert "/agents-api/runs" in document["paths"]
    check_openapi(document)
    mounted = Starlette(routes=[Mount("/agents-api", app=ACPApp(demo_registry()))])
    with TestClient(mounted) as client:
        served = client.get("/agents-api/openapi.json").json()
        assert served["servers"][0]["url"] == "http://testserver/agents-api"
