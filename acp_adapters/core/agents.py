"""Declaring agents: a registry owned by the host app and a decorator."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

from pydantic import ValidationError

from .models import AGENT_NAME_PATTERN, AgentManifest, Metadata

__all__ = ["AgentDefinition", "AgentKind", "AgentRegistry"]

AgentKind = Literal["async_generator", "coroutine", "sync_generator", "function"]
F = TypeVar("F", bound=Callable[..., Any])

_NAME = re.compile(AGENT_NAME_PATTERN)


@dataclass(frozen=True)
class AgentDefinition:
    """A registered agent: its manifest, its callable, and how to call it."""

    manifest: AgentManifest
    func: Callable[..., Any]
    kind: AgentKind
    takes_context: bool
    #: Runs of this agent this process executes at once (past it ``POST /runs`` answers 429);
    #: ``None``: only the service's ``max_active_runs`` applies.
    max_active_runs: int | None = None

    @property
    def name(self) -> str:
        return self.manifest.name


def _kind_of(func: Callable[..., Any]) -> AgentKind:
    if inspect.isasyncgenfunction(func):
        return "async_generator"
    if inspect.iscoroutinefunction(func):
        return "coroutine"
    if inspect.isgeneratorfunction(func):
        return "sync_generator"
    return "function"


def _takes_context(func: Callable[..., Any], name: str) -> bool:
    """Whether ``func`` is called as ``(input, context)`` rather than ``(input)``; raises
    ``TypeError`` naming the agent when it can be called as neither."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # a builtin without a signature: give it both
        return True
    params = list(signature.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    open_ended = any(p.kind is p.VAR_POSITIONAL for p in params)
    keyword_only = [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty]

    def takes(count: int) -> bool:
        return len(required) <= count and (count <= len(positional) or open_ended)

    if keyword_only or not (takes(1) or takes(2)):
        why = (
            f"its keyword-only argument(s) {', '.join(keyword_only)} have no default"
            if keyword_only
            else f"it takes {len(required)} required positional arguments"
            if len(required) > 2
            else "it takes no positional argument"
        )
        raise TypeError(
            f"agent {name!r}, {getattr(func, '__qualname__', 'a callable')}{signature}, cannot be called "
            f"as (input) or (input, context): {why}. An agent takes the input messages and, "
            "optionally, the context, positionally: def agent(input, context) or def agent(input); "
            "give any other argument a default"
        )
    return takes(2)


class AgentRegistry:
    """The agents a host app serves.

    >>> agents = AgentRegistry()
    >>> @agents.agent()
    ... async def echo(input, context):
    ...     '''Echoes what it is sent.'''
    ...     for message in input:
    ...         yield message

    An agent is an async generator, a coroutine function, a sync generator or a plain function taking
    ``(input, context)`` or ``(input)``. Sync agents run in a bounded thread pool, never on the
    event loop.
    """

    def __init__(self) -> None:
        self._agents: dict[str, AgentDefinition] = {}

    @overload
    def agent(self, func: F, /) -> F: ...

    @overload
    def agent(
        self,
        name: str | None = None,
        *,
        description: str | None = None,
        input_content_types: Sequence[str] = ("*/*",),
        output_content_types: Sequence[str] = ("*/*",),
        metadata: Metadata | dict[str, Any] | None = None,
        max_active_runs: int | None = None,
    ) -> Callable[[F], F]: ...

    def agent(
        self,
        name: str | Callable[..., Any] | None = None,
        *,
        description: str | None = None,
        input_content_types: Sequence[str] = ("*/*",),
        output_content_types: Sequence[str] = ("*/*",),
        metadata: Metadata | dict[str, Any] | None = None,
        max_active_runs: int | None = None,
    ) -> Any:
        """Register the decorated callable as an agent.

        ``name`` defaults to the function's name with ``_`` turned into ``-``; it must follow the ACP
        agent name rule (an RFC 1123 DNS label). ``description`` defaults to the docstring.
        ``max_active_runs`` caps the runs of this agent executing at once in this process (past it,
        ``POST /runs`` answers 429 with ``Retry-After``); ``None``: no cap of its own.
        """
        if callable(name):
            self.add(name)
            return name

        def decorator(func: F) -> F:
            self.add(
                func,
                name=name,
                description=description,
                input_content_types=input_content_types,
                output_content_types=output_content_types,
                metadata=metadata,
                max_active_runs=max_active_runs,
            )
            return func

        return decorator

    def add(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        input_content_types: Sequence[str] = ("*/*",),
        output_content_types: Sequence[str] = ("*/*",),
        metadata: Metadata | dict[str, Any] | None = None,
        max_active_runs: int | None = None,
    ) -> AgentDefinition:
        """Register ``func`` as an agent (the decorator's plain form). Raises ``ValueError`` on a bad
        or duplicate name, or a ``max_active_runs`` that is not a whole number of at least 1;
        ``TypeError`` when ``func`` cannot be called as ``(input, context)`` or ``(input)``."""
        if not callable(func):
            raise TypeError(f"an agent must be callable, not {func!r}")
        if max_active_runs is not None and (
            isinstance(max_active_runs, bool) or not isinstance(max_active_runs, int) or max_active_runs < 1
        ):
            raise ValueError(
                f"max_active_runs must be a whole number of at least 1 or None, not {max_active_runs!r}"
            )
        agent_name = name if name is not None else getattr(func, "__name__", "").replace("_", "-")
        if not isinstance(agent_name, str) or len(agent_name) > 63 or not _NAME.match(agent_name):
            raise ValueError(
                f"invalid agent name {agent_name!r}: use lower-case letters, digits and '-', "
                "starting and ending with a letter or digit, at most 63 characters"
            )
        if agent_name in self._agents:
            raise ValueError(f"an agent named {agent_name!r} is already registered")
        try:
            manifest = AgentManifest(
                name=agent_name,
                description=description if description is not None else inspect.getdoc(func) or "",
                input_content_types=list(input_content_types),
                output_content_types=list(output_content_types),
                metadata=Metadata.model_validate(metadata or {}),
            )
        except ValidationError as exc:
            raise ValueError(f"invalid manifest for agent {agent_name!r}: {exc}") from exc
        definition = AgentDefinition(
            manifest=manifest,
            func=func,
            kind=_kind_of(func),
            takes_context=_takes_context(func, agent_name),
            max_active_runs=max_active_runs,
        )
        self._agents[agent_name] = definition
        return definition

    def get(self, name: str) -> AgentDefinition | None:
        """The agent called ``name``, or ``None``."""
        return self._agents.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._agents

    def __iter__(self) -> Iterator[AgentDefinition]:
        return iter(self._agents.values())

    def __len__(self) -> int:
        return len(self._agents)
