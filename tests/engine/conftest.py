"""Engine unit tests drive the neutral service directly: no framework, no sockets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest

from acp_adapters import ACPService, AgentRegistry, Settings
from acp_adapters.core.http import Request, Response, StreamResponse
from tests.helpers import JSON, run_body, sse_data


async def call(
    service: ACPService,
    method: str,
    path: str,
    body: Any = None,
    *,
    owner: str | None = None,
    headers: Mapping[str, str] = JSON,
    query: str = "",
) -> Response | StreamResponse:
    """``service``'s answer to a request at ``path`` under ``http://test/acp`` (``body`` as given if
    bytes, else as JSON; none if ``None``)."""
    data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
    return await service.handle(Request(method, path, "http://test/acp", query, dict(headers), data, owner))


class Call:
    """A tiny client for an ACPService (its requests carry no headers)."""

    def __init__(self, service: ACPService) -> None:
        self.service = service

    async def __call__(
        self, method: str, path: str, body: Any = None, *, owner: str | None = None, query: str = ""
    ) -> Response | StreamResponse:
        return await call(self.service, method, path, body, owner=owner, headers={}, query=query)

    async def json(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        response = await self(method, path, body, **kw)
        assert isinstance(response, Response)
        return response.status, json.loads(response.body)

    async def run(self, agent: str, text: str = "hi", mode: str = "sync", **kw: Any) -> tuple[int, Any]:
        return await self.json("POST", "/runs", run_body(agent, text, mode=mode), **kw)

    async def stream(self, agent: str, text: str = "hi") -> list[dict[str, Any]]:
        response = await self("POST", "/runs", run_body(agent, text, mode="stream"))
        assert isinstance(response, StreamResponse)
        return sse_data(b"".join([chunk async for chunk in response.body]))


@pytest.fixture
async def make_call() -> AsyncIterator[Callable[..., Call]]:
    services: list[ACPService] = []

    def make(registry: AgentRegistry, **settings: Any) -> Call:
        service = ACPService(registry, settings=Settings(**settings))
        services.append(service)
        return Call(service)

    yield make
    for service in services:
        await service.aclose()
