"""A2A errors: one class per error A2A defines, each with its JSON-RPC code, its ``ErrorInfo`` reason and
its HTTP+JSON status; and the A2A error an ACP error of the engine becomes.

Rules this module keeps:

* JSON-RPC errors travel with HTTP 200, as the official clients expect; only what is about the HTTP
  exchange itself keeps its HTTP status in both bindings (401 and 403 from the ``authorize`` hook,
  429 with ``Retry-After`` when a limit on work is reached, 503 when the store is unreachable).
* A 1.0 error carries a ``google.rpc.ErrorInfo`` (``reason``, ``domain`` ``a2a-protocol.org``,
  ``metadata``): in ``error.data`` (JSON-RPC) or ``error.details`` (HTTP+JSON, with the gRPC status
  name). A 0.3 error carries its metadata, if any, as ``error.data``.
* Messages never carry internals; client text reaches them only through
  :func:`~acp_adapters.core.responses.shown`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from acp_adapters.core.errors import (
    ACPError,
    AuthenticationRequired,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionRequired,
    TooManyRequests,
    UnsupportedMediaType,
    ValidationFailed,
)
from acp_adapters.core.http import Headers

__all__ = [
    "A2AError",
    "ContentTypeNotSupported",
    "ExtendedCardNotConfigured",
    "InternalError",
    "InvalidParams",
    "InvalidRequest",
    "JSONParseError",
    "MethodNotFound",
    "NotJSON",
    "PayloadTooLarge",
    "PermissionDenied",
    "PushNotificationNotSupported",
    "ResourceExhausted",
    "TaskNotCancelable",
    "TaskNotFound",
    "Unauthenticated",
    "Unavailable",
    "UnsupportedOperation",
    "VersionNotSupported",
    "error_info",
    "from_acp",
]

ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
DOMAIN = "a2a-protocol.org"


class A2AError(Exception):
    """An A2A error. Subclasses set the class attributes; ``metadata`` goes to the ``ErrorInfo``."""

    #: The JSON-RPC error code.
    code: ClassVar[int] = -32603
    #: The ``ErrorInfo`` reason (what the official clients map back to an error type).
    reason: ClassVar[str] = "INTERNAL_ERROR"
    #: The HTTP status of an HTTP+JSON answer, and its gRPC status name.
    http_status: ClassVar[int] = 500
    grpc_status: ClassVar[str] = "INTERNAL"
    #: The HTTP status of a JSON-RPC answer (200 but for errors of the HTTP exchange itself).
    jsonrpc_status: ClassVar[int] = 200
    default_message: ClassVar[str] = "Internal error"

    def __init__(
        self,
        message: str | None = None,
        metadata: dict[str, Any] | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.message = message or self.default_message
        self.metadata = metadata or {}
        self.headers: Headers = list(headers)
        super().__init__(self.message)


class TaskNotFound(A2AError):
    code, reason, http_status, grpc_status = -32001, "TASK_NOT_FOUND", 404, "NOT_FOUND"
    default_message = "Task not found"


class TaskNotCancelable(A2AError):
    code, reason, http_status, grpc_status = -32002, "TASK_NOT_CANCELABLE", 400, "FAILED_PRECONDITION"
    default_message = "Task cannot be canceled"


class PushNotificationNotSupported(A2AError):
    code, reason = -32003, "PUSH_NOTIFICATION_NOT_SUPPORTED"
    http_status, grpc_status = 400, "FAILED_PRECONDITION"
    default_message = "Push notifications are not supported"


class UnsupportedOperation(A2AError):
    code, reason, http_status, grpc_status = -32004, "UNSUPPORTED_OPERATION", 400, "FAILED_PRECONDITION"
    default_message = "This operation is not supported"


class ContentTypeNotSupported(A2AError):
    code, reason, http_status, grpc_status = -32005, "CONTENT_TYPE_NOT_SUPPORTED", 400, "INVALID_ARGUMENT"
    default_message = "Incompatible content types"


class ExtendedCardNotConfigured(A2AError):
    code, reason = -32007, "EXTENDED_AGENT_CARD_NOT_CONFIGURED"
    http_status, grpc_status = 400, "FAILED_PRECONDITION"
    default_message = "Authenticated Extended Card is not configured"


class VersionNotSupported(A2AError):
    code, reason, http_status, grpc_status = -32009, "VERSION_NOT_SUPPORTED", 400, "FAILED_PRECONDITION"
    default_message = "Version not supported"


class InvalidParams(A2AError):
    code, reason, http_status, grpc_status = -32602, "INVALID_PARAMS", 400, "INVALID_ARGUMENT"
    default_message = "Invalid params"


class InvalidRequest(A2AError):
    code, reason, http_status, grpc_status = -32600, "INVALID_REQUEST", 400, "INVALID_ARGUMENT"
    default_message = "Invalid Request"


class MethodNotFound(A2AError):
    code, reason, http_status, grpc_status = -32601, "METHOD_NOT_FOUND", 404, "NOT_FOUND"
    default_message = "Method not found"


class JSONParseError(A2AError):
    code, reason, http_status, grpc_status = -32700, "INVALID_REQUEST", 400, "INVALID_ARGUMENT"
    default_message = "Invalid JSON payload"


class PayloadTooLarge(InvalidRequest):
    """A body over ``max_body_size``: JSON-RPC's invalid request (HTTP 200, as a2a-sdk answers it), 413
    over HTTP+JSON."""

    http_status = 413
    default_message = "Payload too large"


class NotJSON(InvalidRequest):
    """A body not declared as JSON (a browser's cross-site form post): 415 over HTTP+JSON."""

    http_status = 415


class InternalError(A2AError):
    """Anything unexpected (the traceback goes to the log, never to the client)."""


class Unauthenticated(A2AError):
    code, reason, http_status, grpc_status = -32600, "UNAUTHENTICATED", 401, "UNAUTHENTICATED"
    jsonrpc_status = 401
    default_message = "authentication required"


class PermissionDenied(A2AError):
    code, reason, http_status, grpc_status = -32600, "PERMISSION_DENIED", 403, "PERMISSION_DENIED"
    jsonrpc_status = 403
    default_message = "permission denied"


class ResourceExhausted(A2AError):
    """A limit on work was reached (429 with ``Retry-After``, in both bindings)."""

    code, reason, http_status, grpc_status = -32000, "RESOURCE_EXHAUSTED", 429, "RESOURCE_EXHAUSTED"
    jsonrpc_status = 429
    default_message = "too many active runs"


class Unavailable(A2AError):
    """The store is unreachable (503, in both bindings)."""

    code, reason, http_status, grpc_status = -32000, "UNAVAILABLE", 503, "UNAVAILABLE"
    jsonrpc_status = 503
    default_message = "the store is unreachable"


def error_info(error: A2AError) -> dict[str, Any]:
    """The error's ``google.rpc.ErrorInfo``; metadata values are strings, as ErrorInfo's are."""
    metadata = {
        str(key): value if isinstance(value, str) else str(value) for key, value in error.metadata.items()
    }
    return {"@type": ERROR_INFO_TYPE, "reason": error.reason, "domain": DOMAIN, "metadata": metadata}


def from_acp(
    exc: ACPError,
    *,
    not_found: type[A2AError] = TaskNotFound,
    conflict: type[A2AError] = UnsupportedOperation,
) -> A2AError:
    """The A2A error an ACP error of the engine or the core becomes.

    ``not_found`` is what a 404 means where it was raised (a task, or a context of someone else);
    ``conflict`` what a 409 means (a message to a task that takes none, a cancel of an ended task).
    """
    message = exc.error.message
    data = exc.error.data or {}
    if isinstance(exc, NotFoundError):
        return not_found(message)
    if isinstance(exc, ConflictError):
        return conflict(message, {"status": str(data.get("status", ""))} if "status" in data else None)
    if isinstance(exc, TooManyRequests):
        return ResourceExhausted(message, _limit_metadata(data), exc.headers)
    if isinstance(exc, AuthenticationRequired):
        return Unauthenticated(message, None, exc.headers)
    if isinstance(exc, PermissionRequired):
        return PermissionDenied(message, None, exc.headers)
    if isinstance(exc, PayloadTooLargeError):
        return PayloadTooLarge(message, _limit_metadata(data))
    if isinstance(exc, UnsupportedMediaType):
        return NotJSON(message)
    if isinstance(exc, ValidationFailed) or exc.status == 422:
        return InvalidParams(message, _limit_metadata(data))
    if exc.status == 404:
        return not_found(message)
    if exc.status in (401, 403, 429, 503):
        kind = {401: Unauthenticated, 403: PermissionDenied, 429: ResourceExhausted, 503: Unavailable}
        return kind[exc.status](message, None, exc.headers)
    if 400 <= exc.status < 500:
        return InvalidRequest(message)
    return InternalError()


def _limit_metadata(data: dict[str, Any]) -> dict[str, Any] | None:
    """The name and value of the limit an ACP error names, if any."""
    limit = data.get("limit")
    if isinstance(limit, str):
        return {"limit": limit, limit: data.get(limit, "")}
    if "max_body_size" in data:
        return {"limit": "max_body_size", "max_body_size": data["max_body_size"]}
    return None
