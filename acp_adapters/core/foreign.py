"""Values from other libraries that an agent may yield: the official SDK's models, taken as ours.

An agent written for the official ``acp-sdk`` yields ``acp_sdk.models.Message``, ``MessagePart``,
``Artifact``, ``MessageAwaitRequest`` and ``Error``. They are recognised by duck typing (a pydantic
model whose class, or a base class, has that name in a module under ``acp_sdk.``), so the core never
imports ``acp_sdk``, and rebuilt as the equivalent model of :mod:`acp_adapters.core.models`.

A pydantic model of another library whose class is named like an ACP message (``Message``,
``AIMessage``, ``MessagePart``...) is none of ours: it fails the run, naming its type, rather than
becoming a ``generic`` event and a run that completes with no output.
"""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from .models import Artifact, Error, Message, MessageAwaitRequest, MessagePart

__all__ = ["UnsendableValue", "foreign_error", "from_foreign", "looks_like_a_message", "type_name"]

#: The official SDK's models an agent yields, by class name, and ours that they become.
_SDK_EQUIVALENTS: dict[str, type[BaseModel]] = {
    "Message": Message,
    "MessagePart": MessagePart,
    "Artifact": Artifact,
    "MessageAwaitRequest": MessageAwaitRequest,
    "Error": Error,
}


class UnsendableValue(TypeError):
    """A value an agent yielded that ACP cannot carry: the agent author's mistake. It fails the run
    with its message (which names the value's type, never its content), debug mode or not."""

    def __init__(self, message: str, value_type: str) -> None:
        super().__init__(message)
        self.value_type = value_type


def type_name(value: object) -> str:
    """``int`` for builtins, ``module.Class`` for anything else."""
    cls = type(value)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def from_foreign(item: BaseModel) -> BaseModel | None:
    """The model of ours that the official SDK's ``item`` stands for, or ``None`` if it is not one.

    Raises ``ValueError`` saying what is wrong when it is one but does not hold valid ACP (an error
    code the spec does not know, a message part with both content and a URL).
    """
    for cls in type(item).__mro__:
        ours = _SDK_EQUIVALENTS.get(cls.__name__)
        if ours is not None and cls.__module__.startswith("acp_sdk."):
            break
    else:
        return None
    try:
        return ours.model_validate(item.model_dump(mode="json", exclude_none=True))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
        raise ValueError(problems) from None


def foreign_error(exc: BaseException) -> Error | None:
    """The error of the official SDK's ``ACPError`` (raised by an agent written for it), as ours;
    ``None`` for any other exception or an error that is not valid ACP."""
    error = getattr(exc, "error", None)
    if not type(exc).__module__.startswith("acp_sdk.") or not isinstance(error, BaseModel):
        return None
    try:
        converted = from_foreign(error)
    except ValueError:
        return None
    return converted if isinstance(converted, Error) else None


def looks_like_a_message(item: BaseModel) -> bool:
    """Whether ``item``'s class (or a base) is named like a message or a part: a mistake to send as a
    ``generic`` event."""
    return any(
        cls.__name__ in _SDK_EQUIVALENTS or cls.__name__.endswith(("Message", "MessagePart", "MessageChunk"))
        for cls in type(item).__mro__
        if cls is not BaseModel and cls.__module__ != "pydantic.main"
    )
