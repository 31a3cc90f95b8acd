"""Headers no answer may carry."""

from __future__ import annotations

import pytest

from tests.deployments.base import Target
from tests.helpers import run_body


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/ping"), ("GET", "/agents"), ("OPTIONS", "/runs"), ("POST", "/runs")]
)
def test_no_cors_headers_by_default(target: Target, method: str, path: str) -> None:
    # CORS is off unless the host lists origins: a page on another site must not drive the agents.
    headers = {
        "origin": "https://evil.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    body = run_body("echo") if method == "POST" else None
    result = target.client.request(method, path, json=body, headers=headers)
    assert result.status < 500, result
    assert not [name for name in result.headers if name.startswith("access-control-")], result.headers
