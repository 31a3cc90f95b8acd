"""Request bodies: their media type, their parsing into models, and the caps on what they may hold.

Rules this module keeps:

* A POST body is JSON and says so (``Content-Type: application/json``, parameters allowed, or an
  ``application/*+json`` type); any other declared type gets 415. A request with no type at all is
  taken as JSON unless a browser sent it from another origin (``Sec-Fetch-Site`` other than
  ``same-origin``): the official Python client (acp-sdk 1.0) sends none, and a browser can send a
  body without a type in a "simple" cross-site request, with the user's cookies.
* A body larger than :data:`THREAD_THRESHOLD` is decoded in a worker thread, its caps are checked on
  the decoded JSON (before any model is built), and only then is it validated, still in the thread:
  a body of the maximum size never holds the event loop long (pydantic's per-part validator lets the
  GIL switch), and a body over a cap costs a JSON decode, not a million objects.
* Caps on the input (``max_input_messages``, ``max_input_parts`` per message,
  ``max_input_total_parts`` in all, ``max_history_urls``) are checked before a run starts; past one,
  422 naming the limit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import anyio.to_thread
from pydantic import BaseModel, ValidationError

from .errors import UnsupportedMediaType, ValidationFailed
from .models import Message, RunCreateRequest, RunResumeRequest
from .settings import Settings

__all__ = ["THREAD_THRESHOLD", "check_create_caps", "check_resume_caps", "parse_body", "require_json"]

#: Bodies larger than this (bytes) are parsed in a worker thread; smaller ones on the loop (< 1 ms).
THREAD_THRESHOLD = 64 * 1024

M = TypeVar("M", bound=BaseModel)

#: ``Sec-Fetch-Site`` values of a request that no other site made.
_OWN_SITE = ("same-origin", "none")


def require_json(headers: Mapping[str, str]) -> None:
    """Raise :class:`UnsupportedMediaType` (415) unless the body is declared as JSON (see above)."""
    declared = headers.get("content-type", "").strip()
    if not declared:
        if headers.get("sec-fetch-site", "same-origin").strip().lower() in _OWN_SITE:
            return
        raise UnsupportedMediaType(None)
    media = declared.split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return
    raise UnsupportedMediaType(declared[:200])


async def parse_body(model: type[M], body: bytes, settings: Settings) -> M:
    """``body`` validated as ``model`` (in a worker thread when large, its caps checked before the
    models are built); 422 naming the bad fields or the cap."""
    if len(body) > THREAD_THRESHOLD:
        return await anyio.to_thread.run_sync(_parse_large, model, body, settings)
    return _parse(model, body)


def _parse_large(model: type[M], body: bytes, settings: Settings) -> M:
    try:
        raw = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise ValidationFailed("the request body is not valid JSON") from None
    try:
        _check_raw_caps(raw, settings)
        return model.model_validate(raw)
    except ValidationFailed as exc:
        error = exc.with_traceback(None)
    except ValidationError as exc:
        error = _schema_error(exc)
    # Raised without the frames that hold the decoded body: a traceback would keep it alive, in a
    # cycle, until a full collection.
    del raw
    raise error


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_raw_caps(raw: Any, settings: Settings) -> None:
    """The caps, on decoded JSON of any shape (what is not the expected shape, pydantic refuses)."""
    if not isinstance(raw, dict):
        return
    messages = raw.get("input")
    if isinstance(messages, list):
        if len(messages) > settings.max_input_messages:
            _over(
                "max_input_messages", settings.max_input_messages, f"the input has {len(messages)} messages"
            )
    else:
        resume = raw.get("await_resume")
        message = resume.get("message") if isinstance(resume, dict) else None
        messages = [message]
    total = 0
    for index, message in enumerate(messages):
        parts = message.get("parts") if isinstance(message, dict) else None
        if isinstance(parts, list):
            _check_part_count(index, len(parts), settings)
            total += len(parts)
    _check_total_parts(total, settings)
    session = raw.get("session")
    history = session.get("history") if isinstance(session, dict) else None
    if isinstance(history, list):
        _check_history(len(history), settings)


def _parse(model: type[M], body: bytes) -> M:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        if any(error["type"] == "json_invalid" for error in errors) or not body.strip():
            raise ValidationFailed("the request body is not valid JSON") from None
        raise _schema_error(exc) from None


def _schema_error(exc: ValidationError) -> ValidationFailed:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    fields: list[dict[str, Any]] = [
        {"field": ".".join(str(part) for part in error["loc"]) or "body", "message": error["msg"]}
        for error in errors[:20]
    ]
    names = ", ".join(f["field"] for f in fields) + (", ..." if len(errors) > len(fields) else "")
    return ValidationFailed(f"the request body does not match the schema: {names}", {"fields": fields})


def check_create_caps(body: RunCreateRequest, settings: Settings) -> None:
    """422 if the run's input or session descriptor is over a cap."""
    if len(body.input) > settings.max_input_messages:
        _over("max_input_messages", settings.max_input_messages, f"the input has {len(body.input)} messages")
    _check_parts(body.input, settings)
    if body.session is not None:
        _check_history(len(body.session.history), settings)


def check_resume_caps(body: RunResumeRequest, settings: Settings) -> None:
    """422 if the resume message has more parts than ``max_input_parts``."""
    _check_parts([body.await_resume.message], settings)


def _check_parts(messages: Sequence[Message], settings: Settings) -> None:
    for index, message in enumerate(messages):
        _check_part_count(index, len(message.parts), settings)
    _check_total_parts(sum(len(message.parts) for message in messages), settings)


def _check_part_count(index: int, count: int, settings: Settings) -> None:
    if count > settings.max_input_parts:
        _over("max_input_parts", settings.max_input_parts, f"message {index} has {count} parts")


def _check_total_parts(total: int, settings: Settings) -> None:
    if total > settings.max_input_total_parts:
        _over("max_input_total_parts", settings.max_input_total_parts, f"the input has {total} parts in all")


def _check_history(count: int, settings: Settings) -> None:
    if count > settings.max_history_urls:
        _over(
            "max_history_urls", settings.max_history_urls, f"the session descriptor has {count} history URLs"
        )


def _over(limit: str, value: int, what: str) -> None:
    raise ValidationFailed(f"{what}, more than {limit} ({value})", {"limit": limit, limit: value})
