"""GET /agents and GET /agents/{name}."""

from __future__ import annotations

import pytest

from tests.deployments.base import Target
from tests.helpers import DEMO_AGENTS, acp_error, ok_json


def list_agents(target: Target, query: str = "") -> list[str]:
    body = ok_json(target.client.request("GET", "/agents" + query), 200, "AgentsListResponse")
    return [agent["name"] for agent in body["agents"]]


def test_listing_without_paging_shows_every_demo_agent(target: Target) -> None:
    # The official clients send no limit: the spec's default of 10 would hide agents from them.
    names = list_agents(target)
    assert sorted(names) == sorted(DEMO_AGENTS)
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("query", "window"),
    [
        ("?limit=1", slice(0, 1)),
        ("?limit=5&offset=5", slice(5, 10)),
        ("?offset=14", slice(14, 15)),
        ("?offset=15", slice(15, 15)),
        ("?offset=1000", slice(1000, 1000)),
        ("?limit=1000", slice(0, 1000)),
        ("?limit=10", slice(0, 10)),
        ("?offset=0", slice(0, None)),
    ],
)
def test_limit_and_offset_page_through_the_same_order(target: Target, query: str, window: slice) -> None:
    assert list_agents(target, query) == list_agents(target)[window]


@pytest.mark.parametrize(
    "query",
    ["?limit=0", "?limit=1001", "?limit=-1", "?offset=-1", "?limit=abc", "?offset=1.5", "?limit="],
)
def test_limit_and_offset_out_of_range_are_rejected(target: Target, query: str) -> None:
    body = acp_error(target.client.request("GET", "/agents" + query), 422, "invalid_input")
    assert ("limit" if "limit" in query else "offset") in str(body.get("data")), body


@pytest.mark.parametrize("name", DEMO_AGENTS)
def test_each_demo_agent_has_a_manifest(target: Target, name: str) -> None:
    manifest = ok_json(target.client.request("GET", f"/agents/{name}"), 200, "AgentManifest")
    assert manifest["name"] == name
    assert manifest["description"]
    listed = ok_json(target.client.request("GET", "/agents"), 200, "AgentsListResponse")["agents"]
    assert [agent for agent in listed if agent["name"] == name] == [manifest]


def test_manifest_declares_content_types(target: Target) -> None:
    manifest = ok_json(target.client.request("GET", "/agents/mime-types"), 200, "AgentManifest")
    assert manifest["input_content_types"] == ["text/plain", "application/json"]
    assert manifest["output_content_types"] == [
        "text/html",
        "application/json",
        "application/javascript",
        "text/css",
    ]


def test_unknown_agent_is_404(target: Target) -> None:
    acp_error(target.client.request("GET", "/agents/nobody"), 404, "not_found")


@pytest.mark.parametrize("name", ["Echo", "a" * 64, "echo-", "%20", "echo%2Fx"])
def test_invalid_agent_name_is_404(target: Target, name: str) -> None:
    acp_error(target.client.request("GET", f"/agents/{name}"), 404, "not_found")
