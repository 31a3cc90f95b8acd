"""What both bindings share: reading a body, checking it before any model is built, the models'
validation errors as A2A's, streams as server-sent events, and the ``A2A-Version`` header.

Rules this module keeps:

* A large body is decoded in a worker thread, and the caps on input (``max_input_parts``) are checked
  on the decoded JSON before any model is built, as the ACP core does (``core/bodies.py``).
* A stream ends with the item after which nothing follows; what goes wrong after it started becomes an
  error event (``event: error``), never a traceback or a stream that stops without a word.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from enum import Enum
from typing import Any, TypeVar

import anyio.to_thread
from pydantic import BaseModel, ValidationError

from acp_adapters.core.bodies import THREAD_THRESHOLD
from acp_adapters.core.errors import ACPError
from acp_adapters.core.settings import Settings
from acp_adapters.core.store import StoreUnavailable

from .errors import (
    A2AError,
    InternalError,
    InvalidParams,
    JSONParseError,
    Unavailable,
    VersionNotSupported,
    from_acp,
)
from .models import StreamResponse
from .tasks import TaskStream

__all__ = ["Dialect", "decode", "dialect_of", "event_stream", "params_of", "to_a2a_error"]

logger = logging.getLogger("acp_adapters")

M = TypeVar("M", bound=BaseModel)


class Dialect(str, Enum):
    """The A2A version a request speaks."""

    V1 = "1.0"
    V03 = "0.3"


def dialect_of(headers: Any) -> Dialect | None:
    """The dialect the ``A2A-Version`` header names (``None``: no header); a version this server does
    not speak is :class:`VersionNotSupported`."""
    value = str(headers.get("a2a-version", "")).strip()
    if not value:
        return None
    parts = value.split(".")
    if parts[0] == "1" and (len(parts) == 1 or parts[1] == "0"):
        return Dialect.V1
    if parts[0] == "0" and len(parts) > 1 and parts[1] == "3":
        return Dialect.V03
    raise VersionNotSupported(
        f"A2A version {value[:40]!r} is not supported: this server speaks 1.0 and 0.3",
        {"supported": "1.0, 0.3"},
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise JSONParseError(f"the request body is not valid JSON: {str(exc)[:200]}") from None


async def decode(body: bytes) -> Any:
    """The body's JSON (decoded in a worker thread when large); :class:`JSONParseError` if it is not."""
    if len(body) > THREAD_THRESHOLD:
        return await anyio.to_thread.run_sync(_loads, body)
    return _loads(body)


def params_of(
    model: type[M], raw: Any, settings: Settings, *, message_at: tuple[str, ...] = ("message",)
) -> M:
    """``raw`` validated as ``model``, after the caps on the message it holds (at ``message_at``);
    :class:`InvalidParams` naming the bad fields."""
    message: Any = raw
    for key in message_at:
        message = message.get(key) if isinstance(message, dict) else None
    parts = message.get("parts") if isinstance(message, dict) else None
    if isinstance(parts, list) and len(parts) > settings.max_input_parts:
        limit = settings.max_input_parts
        raise InvalidParams(
            f"the message has {len(parts)} parts, more than max_input_parts ({limit})",
            {"limit": "max_input_parts", "max_input_parts": str(limit)},
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise invalid_params(exc) from None
    except ValueError as exc:
        raise InvalidParams(str(exc)[:300]) from None


def invalid_params(exc: ValidationError) -> InvalidParams:
    """A model's validation error as :class:`InvalidParams` naming the fields (at most 10)."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    fields = [
        f"{'.'.join(str(part) for part in error['loc']) or 'params'}: {error['msg']}" for error in errors[:10]
    ]
    more = f" (and {len(errors) - len(fields)} more)" if len(errors) > len(fields) else ""
    return InvalidParams("invalid params: " + "; ".join(fields) + more)


def to_a2a_error(exc: Exception) -> A2AError:
    """Any exception as the A2A error it is answered with (an unexpected one is logged, and answered
    without internals)."""
    if isinstance(exc, A2AError):
        return exc
    if isinstance(exc, ACPError):
        return from_acp(exc)
    if isinstance(exc, StoreUnavailable):
        logger.warning("store unreachable: %s", exc)
        return Unavailable()
    logger.error("unexpected error answering an A2A request", exc_info=exc)
    return InternalError()


async def event_stream(
    items: TaskStream,
    frame: Callable[[StreamResponse, bool], bytes],
    error_frame: Callable[[A2AError], bytes],
) -> AsyncIterator[bytes]:
    """A task's items as SSE chunks: ``frame(item, final)`` for each (``final``: nothing follows),
    a comment line for a heartbeat, ``error_frame`` if the stream fails."""
    try:
        async for item in items:
            if item is None:
                yield b": ping\n\n"
                continue
            update = item.status_update
            state = update.status.state if update is not None else None
            final = state is not None and (state.is_terminal or state.value == "TASK_STATE_INPUT_REQUIRED")
            yield frame(item, final)
    except Exception as exc:
        yield error_frame(to_a2a_error(exc))
    finally:
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            await aclose()
