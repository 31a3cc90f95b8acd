"""GET /ping."""

from __future__ import annotations

from tests.deployments.base import Target


def test_ping_answers_an_empty_object(target: Target) -> None:
    result = target.client.request("GET", "/ping")
    assert result.status == 200, result
    assert result.headers["content-type"].startswith("application/json")
    assert isinstance(result.json(), dict)
