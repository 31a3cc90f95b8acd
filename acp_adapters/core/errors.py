"""ACP errors as exceptions, and their HTTP statuses."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from .models import Error, ErrorCode

__all__ = [
    "ACPError",
    "AuthenticationRequired",
    "ConflictError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionRequired",
    "TooManyRequests",
    "UnsupportedMediaType",
    "ValidationFailed",
    "agent_not_found",
]

#: Most agent names an unknown agent's 404 lists in its ``data``.
_LISTED_AGENTS = 20


class ACPError(Exception):
    """An error with an ACP ``{code, message, data}`` body.

    Raised by an agent, it fails the run with this error. Raised in the HTTP layer, it becomes the
    answer, with ``status``.
    """

    status: int = 500
    #: Headers the HTTP layer adds to the answer (``Retry-After``, ``WWW-Authenticate``).
    headers: tuple[tuple[str, str], ...] = ()

    def __init__(
        self,
        error: Error | str,
        message: str | None = None,
        *,
        data: dict[str, Any] | None = None,
        status: int | None = None,
    ) -> None:
        if isinstance(error, Error):
            self.error = error
        else:
            self.error = Error(code=ErrorCode(error), message=message or error, data=data)
        if status is not None:
            self.status = status
        elif self.error.code is ErrorCode.INVALID_INPUT:
            self.status = 422
        elif self.error.code is ErrorCode.NOT_FOUND:
            self.status = 404
        super().__init__(self.error.message)


class NotFoundError(ACPError):
    """404 not_found."""

    def __init__(self, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(Error(code=ErrorCode.NOT_FOUND, message=message, data=data), status=404)


def agent_not_found(name: str, known: Sequence[str]) -> NotFoundError:
    """The 404 for an unknown agent ``name`` (as it may be shown): it suggests the closest of the
    ``known`` agents (``slow-sync`` for ``slow_sync``) and lists up to 20 of them in ``data.agents``."""
    spelled = name.lower().replace("_", "-")
    close = [spelled] if spelled in known else []
    close += [other for other in difflib.get_close_matches(name, known, n=3) if other not in close]
    message = f"agent {name} not found"
    if close:
        message += f"; did you mean {' or '.join(close[:3])}?"
    elif not known:
        message += ": this server has no agents"
    else:
        message += "; GET /agents lists the agents"
    listed = [*close[:3], *(other for other in known if other not in close)][:_LISTED_AGENTS]
    return NotFoundError(message, {"agents": listed})


class ValidationFailed(ACPError):
    """422 invalid_input, with ``data`` naming the failing fields."""

    def __init__(self, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(Error(code=ErrorCode.INVALID_INPUT, message=message, data=data), status=422)


class ConflictError(ACPError):
    """409 invalid_input: the request does not fit the run's current state."""

    def __init__(self, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(Error(code=ErrorCode.INVALID_INPUT, message=message, data=data), status=409)


class PayloadTooLargeError(ACPError):
    """413 invalid_input: the body is over the configured limit."""

    def __init__(self, limit: int) -> None:
        message = f"request body is larger than {limit} bytes"
        super().__init__(ErrorCode.INVALID_INPUT, message, data={"max_body_size": limit}, status=413)


class UnsupportedMediaType(ACPError):
    """415 invalid_input: a POST whose body is not declared as ``application/json``."""

    def __init__(self, content_type: str | None) -> None:
        got = f"not {content_type!r}" if content_type else "none was given"
        message = f"the request body must be sent as Content-Type: application/json ({got})"
        super().__init__(ErrorCode.INVALID_INPUT, message, data={"content_type": content_type}, status=415)


class TooManyRequests(ACPError):
    """429 invalid_input: a limit on concurrent work is reached; ``Retry-After`` says when to try again.

    ``limit`` names the setting (``max_active_runs``), ``data`` carries its value.
    """

    def __init__(self, message: str, *, limit: str, value: int, retry_after: int = 1) -> None:
        super().__init__(ErrorCode.INVALID_INPUT, message, data={"limit": limit, limit: value}, status=429)
        self.headers = (("retry-after", str(retry_after)),)


class AuthenticationRequired(ACPError):
    """401: the caller must authenticate. ``challenge`` (``'Bearer realm="acp"'``) is sent as
    ``WWW-Authenticate`` when given."""

    def __init__(self, message: str = "authentication required", *, challenge: str | None = None) -> None:
        super().__init__(Error(code=ErrorCode.INVALID_INPUT, message=message), status=401)
        self.challenge = challenge
        if challenge is not None:
            self.headers = (("www-authenticate", challenge),)


class PermissionRequired(ACPError):
    """403: the caller is known but may not do this."""

    def __init__(self, message: str = "permission denied") -> None:
        super().__init__(Error(code=ErrorCode.INVALID_INPUT, message=message), status=403)
