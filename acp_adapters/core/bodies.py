"""Request bodies: their media type, their parsing into models, and the caps on what they may hold.

Rules this module keeps:

* A POST body is JSON and says so (``Content-Type: application/json``, parameters allowed, or an
  ``application/*+json`` type); any other declared type gets 415. A request with no type at all is
  taken as JSON unless a browser sent it from another origin (``Sec-Fetch-Site`` other than
  ``same-origin``): the official Python client (acp-sdk 1.0) sends none, and a browser can send a
  body without a type in a "simple" cross-site request, with the user's cookies.
* A body larger than :data:`THREAD_THRESHOLD` is parsed and validated in a worker thread, so a body of
  the maximum size never holds the event loop (pydantic's per-part validator lets the GIL switch).
  The garbage collector is paused meanwhile, and the objects the body became are then frozen
  (``gc.freeze``) until they are freed: a 4 MiB body can make a million objects, and each full
  collection scanning them holds the GIL, so the loop, for 100-200 ms.
* Caps on the input (``max_input_messages``, ``max_input_parts``, ``max_history_urls``) are checked
  before a run starts; past one, 422 naming the limit.
"""

from __future__ import annotations

import gc
import threading
import weakref
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


async def parse_body(model: type[M], body: bytes) -> M:
    """``body`` validated as ``model``, in a worker thread when large; 422 naming the bad fields."""
    if len(body) > THREAD_THRESHOLD:
        return await anyio.to_thread.run_sync(_parse_large, model, body)
    return _parse(model, body)


class _Collector:
    """Pauses the garbage collector while large bodies are parsed, and keeps what they became out of
    its scans (frozen) until every one of those objects is freed, when it thaws everything again."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._parsing = 0
        self._was_enabled = True
        self._alive = 0

    def pause(self) -> None:
        with self._lock:
            if self._parsing == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._parsing += 1

    def resume(self, parsed: BaseModel | None) -> None:
        with self._lock:
            if parsed is not None:
                holders = [parsed, *_messages_of(parsed)]
                gc.freeze()
                self._alive += len(holders)
                for holder in holders:
                    weakref.finalize(holder, self._freed)
            self._parsing -= 1
            if self._parsing == 0 and self._was_enabled:
                gc.enable()

    def _freed(self) -> None:
        with self._lock:
            self._alive -= 1
            if self._alive == 0:
                gc.unfreeze()


_collector = _Collector()


def _parse_large(model: type[M], body: bytes) -> M:
    _collector.pause()
    parsed = None
    try:
        parsed = _parse(model, body)
        return parsed
    finally:
        _collector.resume(parsed)


def _messages_of(parsed: BaseModel) -> list[Message]:
    """The messages of a parsed body: they may outlive it (a run keeps its input)."""
    if isinstance(parsed, RunCreateRequest):
        return list(parsed.input)
    if isinstance(parsed, RunResumeRequest):
        return [parsed.await_resume.message]
    return []


def _parse(model: type[M], body: bytes) -> M:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        if any(error["type"] == "json_invalid" for error in errors) or not body.strip():
            raise ValidationFailed("the request body is not valid JSON") from None
        fields: list[dict[str, Any]] = [
            {"field": ".".join(str(part) for part in error["loc"]) or "body", "message": error["msg"]}
            for error in errors[:20]
        ]
        names = ", ".join(f["field"] for f in fields) + (", ..." if len(errors) > len(fields) else "")
        raise ValidationFailed(
            f"the request body does not match the schema: {names}", {"fields": fields}
        ) from None


def check_create_caps(body: RunCreateRequest, settings: Settings) -> None:
    """422 if the run's input or session descriptor is over a cap."""
    if len(body.input) > settings.max_input_messages:
        _over("max_input_messages", settings.max_input_messages, f"the input has {len(body.input)} messages")
    _check_parts(body.input, settings)
    if body.session is not None and len(body.session.history) > settings.max_history_urls:
        _over(
            "max_history_urls",
            settings.max_history_urls,
            f"the session descriptor has {len(body.session.history)} history URLs",
        )


def check_resume_caps(body: RunResumeRequest, settings: Settings) -> None:
    """422 if the resume message has more parts than ``max_input_parts``."""
    _check_parts([body.await_resume.message], settings)


def _check_parts(messages: Sequence[Message], settings: Settings) -> None:
    cap = settings.max_input_parts
    for index, message in enumerate(messages):
        if len(message.parts) > cap:
            _over("max_input_parts", cap, f"message {index} has {len(message.parts)} parts")


def _over(limit: str, value: int, what: str) -> None:
    raise ValidationFailed(f"{what}, more than {limit} ({value})", {"limit": limit, limit: value})
