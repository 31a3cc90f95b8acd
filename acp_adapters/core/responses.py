"""The service's answers as bytes and headers, and the path and query parameters it reads.

Rules this module keeps:

* Client text reaches a message only through :func:`shown` (control characters escaped, 200 characters
  at most); an id reaches one only once parsed (:func:`parse_uuid`), as its canonical form.
* A bad parameter is a 422 naming it (``data.fields``), never a 500.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection
from typing import Any

from pydantic import BaseModel

from .errors import ValidationFailed
from .http import Headers, Request, Response
from .models import Error, ErrorCode

__all__ = [
    "JSON",
    "STREAM",
    "cors_headers",
    "int_param",
    "json_response",
    "not_allowed",
    "parse_uuid",
    "render_error",
    "shown",
]

JSON: Headers = [("content-type", "application/json")]
STREAM: Headers = [
    ("content-type", "text/event-stream; charset=utf-8"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def json_response(status: int, body: BaseModel | dict[str, Any], headers: Headers | None = None) -> Response:
    """``body`` as JSON (a model without its ``None`` fields)."""
    if isinstance(body, BaseModel):
        data = body.__pydantic_serializer__.to_json(body, exclude_none=True)
    else:
        data = json.dumps(body, separators=(",", ":")).encode()
    return Response(status, JSON + (headers or []), data)


def render_error(status: int, error: Error) -> Response:
    """An ACP error ``{code, message, data?}`` with ``status``."""
    return json_response(status, error)


def not_allowed(method: str, path: str, allowed: list[str]) -> Response:
    """405 with ``Allow``: ``method`` is not one of ``allowed`` on ``path``."""
    message = f"method {shown(method)} is not allowed on {shown(path)}; use {', '.join(allowed)}"
    if method == "OPTIONS":
        message += " (CORS is off: the cors_origins setting turns it on)"
    response = render_error(
        405, Error(code=ErrorCode.INVALID_INPUT, message=message, data={"allowed": allowed})
    )
    response.headers.append(("allow", ", ".join(allowed)))
    return response


def cors_headers(request: Request, allowed: Collection[str]) -> Headers:
    """CORS headers for an ``Origin`` in ``allowed`` (matched as a whole string; ``*``: any), else only
    ``Vary``."""
    origin = request.headers.get("origin")
    if origin is None or ("*" not in allowed and origin not in allowed):
        return [("vary", "origin")]
    return [
        ("access-control-allow-origin", origin),
        ("access-control-allow-methods", "GET, POST, OPTIONS"),
        ("access-control-allow-headers", "content-type, authorization, idempotency-key, last-event-id"),
        ("access-control-expose-headers", "run-id, retry-after, www-authenticate"),
        ("vary", "origin"),
    ]


def shown(text: str) -> str:
    """Client text as it may appear in a message: control characters escaped, at most 200 characters."""
    text = text[:200]
    return repr(text)[1:-1] if _CONTROL.search(text) else text


def parse_uuid(value: str, name: str) -> uuid.UUID:
    """The path parameter ``name`` as a UUID; 422 if it is not one."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationFailed(f"{name} must be a UUID, not {value[:80]!r}", {"fields": [name]}) from None


def int_param(query: dict[str, list[str]], name: str, low: int, high: int | None) -> int | None:
    """The query parameter ``name`` (its last value) as a whole number from ``low`` to ``high``
    (``None``: no upper bound); ``None`` when absent, 422 when out of range or not a number."""
    values = query.get(name)
    if not values:
        return None
    try:
        value = int(values[-1])
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ValidationFailed(f"{name} must be a whole number {bounds}", {"fields": [name]})
    return value
