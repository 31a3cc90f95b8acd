"""A2A 1.0's published JSON schema, and a check of what the server sends against it.

``schema/a2a-v1.0.json`` is the schema bundle the A2A specification publishes for 1.0 (the
"Non-normative JSON Schema bundle extracted from proto definitions", downloadable as
``https://a2a-protocol.org/v1.0.0/spec/a2a.json`` and printed in the specification's "A2A
Definition/Schema" page), copied as it is published. Its definitions are named by title (``"Task"``,
``"Send Message Response"``) and refer to each other by the file names protoc gave them
(``lf.a2a.v1.Task.jsonschema.json``): :data:`REGISTRY` serves each definition under that name.

The bundle defines the protobuf messages only: not the JSON-RPC envelope, not ``google.rpc.Status``
errors (those are checked by the tests of the wire), and not 0.3 (whose answers the tests parse with
the SDK's 0.3 models, which are generated from 0.3's JSON schema).

:class:`SchemaCheckingTransport` checks every answer the official client receives through it:
:func:`tests.a2a.helpers.client_for` puts it under every 1.0 client of the suite.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from tests.deployments.base import TLS

__all__ = ["REGISTRY", "SchemaCheckingTransport", "definition_for", "schema_errors", "validate"]

BUNDLE = Path(__file__).parent / "schema" / "a2a-v1.0.json"
_PROTO_PACKAGES = ("lf.a2a.v1.", "google.protobuf.")


@cache
def _bundle() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(BUNDLE.read_text())
    return loaded


def _registry() -> Registry[Any]:
    """Every definition under the file name its ``$ref``\\ s use (``lf.a2a.v1.AgentCard.jsonschema.json``)."""
    definitions = _bundle()["definitions"]
    resources = []
    for title, schema in definitions.items():
        name = title.replace(" ", "")
        for package in _PROTO_PACKAGES:
            resources.append((f"{package}{name}.jsonschema.json", DRAFT202012.create_resource(schema)))
    return Registry().with_resources(resources)


REGISTRY = _registry()


def definition_for(message: str) -> dict[str, Any]:
    """The definition of a protobuf message (``"SendMessageResponse"``), whose title is spaced."""
    for title, schema in _bundle()["definitions"].items():
        if title.replace(" ", "") == message:
            found: dict[str, Any] = schema
            return found
    raise KeyError(f"A2A's schema has no definition of {message}")


def schema_errors(data: Any, message: str) -> list[str]:
    """What is wrong with ``data`` as the message ``message`` (dates checked as RFC 3339)."""
    validator = jsonschema.Draft202012Validator(
        definition_for(message), registry=REGISTRY, format_checker=jsonschema.FormatChecker()
    )
    return [
        f"{message} at {'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in validator.iter_errors(data)
    ]


def validate(data: Any, message: str) -> None:
    """Fail unless ``data`` is valid against the definition of ``message``."""
    errors = schema_errors(data, message)
    assert not errors, "\n".join(errors)


# What each answer is --------------------------------------------------------------------------------
_RPC_RESULTS = {
    "SendMessage": "SendMessageResponse",
    "SendStreamingMessage": "StreamResponse",
    "SubscribeToTask": "StreamResponse",
    "GetTask": "Task",
    "CancelTask": "Task",
    "ListTasks": "ListTasksResponse",
}
_REST_RESULTS = [
    ("POST", re.compile(r"/message:send$"), "SendMessageResponse"),
    ("POST", re.compile(r"/message:stream$"), "StreamResponse"),
    (None, re.compile(r"/tasks/[^/]+:subscribe$"), "StreamResponse"),
    ("POST", re.compile(r"/tasks/[^/]+:cancel$"), "Task"),
    ("GET", re.compile(r"/tasks/[^/:]+$"), "Task"),
    ("GET", re.compile(r"/tasks$"), "ListTasksResponse"),
]
#: A served card carries 0.3's fields beside 1.0's, for 0.3 clients (as a2a-sdk's own server does).
CARD_LEGACY_FIELDS = frozenset({"url", "preferredTransport", "protocolVersion"})


def _expected(request: httpx.Request) -> tuple[str, str] | None:
    """(binding, message) of the answer to ``request``, or None when it is nothing the bundle defines."""
    path = request.url.path
    if path.endswith("/.well-known/agent-card.json"):
        return ("card", "AgentCard")
    if request.method == "POST" and request.headers.get("content-type", "").startswith("application/json"):
        try:
            method = json.loads(request.content).get("method")
        except (ValueError, AttributeError):
            method = None
        if method in _RPC_RESULTS:
            return ("jsonrpc", _RPC_RESULTS[method])
    for verb, pattern, message in _REST_RESULTS:
        if (verb is None or verb == request.method) and pattern.search(path):
            return ("rest", message)
    return None


def _payloads(binding: str, body: bytes, streamed: bool) -> list[Any]:
    """The protobuf JSON objects of an answer: its body, or the ``data:`` lines of a stream; a
    JSON-RPC response's ``result`` (its errors are not the bundle's)."""
    if streamed:
        documents = [json.loads(line[5:]) for line in body.decode().splitlines() if line.startswith("data:")]
    else:
        documents = [json.loads(body)] if body else []
    if binding == "jsonrpc":
        return [document["result"] for document in documents if "result" in document]
    if binding == "rest":
        return [document for document in documents if "error" not in document]
    return [{k: v for k, v in document.items() if k not in CARD_LEGACY_FIELDS} for document in documents]


class _TeeStream(httpx.AsyncByteStream):
    """The answer's bytes, passed on as they come and kept to be checked when it ends."""

    def __init__(self, stream: httpx.AsyncByteStream, done: Any) -> None:
        self._stream = stream
        self._done = done
        self._body = bytearray()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            self._body.extend(chunk)
            yield chunk
        self._done(bytes(self._body))

    async def aclose(self) -> None:
        await self._stream.aclose()


class SchemaCheckingTransport(httpx.AsyncBaseTransport):
    """An httpx transport that checks every successful A2A 1.0 answer against the published schema.

    What is wrong is kept in :attr:`errors` (an exception raised inside a client would be turned into
    a client error); :attr:`checked` counts the objects checked, by message.
    """

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._transport = transport or httpx.AsyncHTTPTransport(verify=TLS)
        self.errors: list[str] = []
        self.checked: dict[str, int] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._transport.handle_async_request(request)
        expected = _expected(request)
        if expected is None or response.status_code != 200:
            return response
        binding, message = expected
        streamed = response.headers.get("content-type", "").startswith("text/event-stream")

        def check(body: bytes) -> None:
            try:
                payloads = _payloads(binding, body, streamed)
            except ValueError as exc:
                self.errors.append(f"{request.method} {request.url}: not JSON ({exc})")
                return
            for payload in payloads:
                self.checked[message] = self.checked.get(message, 0) + 1
                where = f"{request.method} {request.url}"
                self.errors.extend(f"{where}: {error}" for error in schema_errors(payload, message))

        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_TeeStream(response.stream, check),
            request=request,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._transport.aclose()
