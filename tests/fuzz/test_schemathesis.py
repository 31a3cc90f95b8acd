"""Schemathesis over the ACP OpenAPI spec against the Starlette (ASGI) and Flask (WSGI) apps in process.

Whatever input the spec allows (and much that it does not), the server answers without a 5xx, with the
content type the spec documents, a body valid against the spec's schemas, and stream events valid
against the spec's ``Event`` schema. Bounded: ``_EXAMPLES`` cases per operation, about half a minute per
framework on this project's 2-core machines.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
import yaml
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)
from starlette.applications import Starlette

from acp_adapters import Settings
from acp_adapters.asgi import ACPMiddleware
from acp_adapters.flask import ACP
from example_agents import demo_registry
from tests.deployments.base import parse_sse
from tests.schema import assert_valid, openapi_path

_EXAMPLES = 100
_CHECKS = [
    not_a_server_error,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
#: Small limits, so that generated input reaches them too; a short await so awaiting runs do not pile up.
_SETTINGS = Settings(await_timeout=2.0, max_run_duration=5.0, max_input_messages=20, max_input_parts=20)


def _spec() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(openapi_path().read_text())
    # Two slips of the spec: the session path's parameter is named "name" while the path says
    # {session_id}, and the resume operation does not declare its {run_id}.
    for parameter in raw["paths"]["/session/{session_id}"]["get"]["parameters"]:
        if parameter["name"] == "name":
            parameter["name"] = "session_id"
    resume = raw["paths"]["/runs/{run_id}"]["post"]
    resume.setdefault("parameters", raw["paths"]["/runs/{run_id}"]["get"]["parameters"])
    return raw


def _starlette_app() -> Any:
    # The middleware form: Starlette's Mount does not route a path with a line break (%0A) to its
    # app at all, so the host's own 404 would answer those.
    return ACPMiddleware(Starlette(), demo_registry(), prefix="/acp", settings=_SETTINGS)


def _flask_app() -> Any:
    app = Flask(__name__)
    ACP(app, demo_registry(), settings=_SETTINGS, url_prefix="/acp")
    return app


schema = schemathesis.openapi.from_dict(_spec())
schema.config.update(base_url="http://testserver/acp")


@pytest.fixture(scope="module", params=["starlette", "flask"])
def app(request: pytest.FixtureRequest) -> Any:
    return _starlette_app() if request.param == "starlette" else _flask_app()


@schema.parametrize()
@settings(max_examples=_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_input_gets_a_server_error_or_an_answer_outside_the_spec(case: Any, app: Any) -> None:
    response = case.call(app=app)
    case.validate_response(response, checks=_CHECKS)
    content_type = "".join(response.headers.get("content-type") or [])
    if content_type.startswith("text/event-stream"):
        events, _ = parse_sse(response.content)
        for event in events:
            assert_valid(event.data, "Event")
