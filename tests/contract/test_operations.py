"""What a mount serves beside ACP, the same in every deployment: ``/health``, ``/openapi.json``, and the
manifest's ``status`` once runs have ended."""

from __future__ import annotations

from openapi_spec_validator import OpenAPIV31SpecValidator

from tests.contract.test_agents import list_agents
from tests.deployments.base import Target
from tests.helpers import ok_json, run_sync


def test_health_answers_200_while_the_store_answers(target: Target) -> None:
    result = target.client.request("GET", "/health")
    assert ok_json(result, 200, None) == {"status": "ok"}
    assert target.client.request("GET", "/health/").status == 200
    assert target.client.request("POST", "/health", json={}).status == 405


def test_openapi_document_is_valid_and_lists_the_mounts_agents(target: Target) -> None:
    document = ok_json(target.client.request("GET", "/openapi.json"), 200, None)
    errors = [str(error) for error in OpenAPIV31SpecValidator(document).iter_errors()]
    assert not errors, errors
    assert document["components"]["schemas"]["AgentName"]["enum"] == list_agents(target)
    assert document["servers"][0]["url"] == target.base_url
    assert "/runs/{run_id}/cancel" in document["paths"]


def test_manifest_carries_a_status_once_runs_have_ended(target: Target) -> None:
    if "celery" in target.extra:
        # The figures are those of the runs a process executed: on Celery, no web process executes any.
        run_sync(target, "echo", "status")
        assert "status" not in ok_json(target.client.request("GET", "/agents/echo"), 200, "AgentManifest")
        return
    # Kept per process: with several workers, look until the worker answering has run echo itself.
    for _ in range(40):
        assert run_sync(target, "echo", "status")["status"] == "completed"
        manifest = ok_json(target.client.request("GET", "/agents/echo"), 200, "AgentManifest")
        if "status" in manifest:
            break
    status = manifest["status"]
    assert 0 < status["success_rate"] <= 100
    assert status["avg_run_time_seconds"] >= 0
    for _ in range(40):
        listing = ok_json(target.client.request("GET", "/agents"), 200, "AgentsListResponse")
        echo = next(agent for agent in listing["agents"] if agent["name"] == "echo")
        if "status" in echo:
            break
        run_sync(target, "echo", "status")
    assert set(echo["status"]) >= {"success_rate", "avg_run_time_seconds"}
