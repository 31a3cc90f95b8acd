"""Settings of an ACP service, shared by every adapter.

Rules this module keeps:

* Every setting has a safe default; :class:`Settings` checks types and ranges when it is made, so a
  mistake fails where it is written, not at the first request.
* Nothing is read from the environment unless the host calls :meth:`Settings.from_env`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = ["Settings"]

_MiB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """What a host may tune. Every adapter accepts these (as arguments, ``app.config`` or Django settings).

    Times are in seconds, sizes in bytes. ``None`` turns an optional limit off. docs/security.md lists
    every limit with the error a client gets past it.
    """

    # requests -------------------------------------------------------------------------------------
    #: Largest request body accepted; a larger one gets 413.
    max_body_size: int = 4 * _MiB
    #: Most messages in a run's input (422 past it).
    max_input_messages: int = 1000
    #: Most parts in one input message (422 past it).
    max_input_parts: int = 1000
    #: Most parts in a run's input, all messages together (422 past it): each part costs a few Python
    #: objects, and a few hundred thousand would cost the server seconds of garbage collection.
    max_input_total_parts: int = 10_000
    #: Most history URLs in a session descriptor a client sends (422 past it).
    max_history_urls: int = 1000
    # work -----------------------------------------------------------------------------------------
    #: Runs this process executes at once (created, in-progress, awaiting and cancelling all count);
    #: past it ``POST /runs`` answers 429 with ``Retry-After``.
    max_active_runs: int = 1000
    #: Runs one owner may have executing at once in this process (429 past it); ``None``: no cap.
    max_active_runs_per_owner: int | None = None
    #: How long a run may take, awaiting time included; past it the run fails with a timeout error.
    max_run_duration: float = 3600.0
    #: How long an awaiting run waits for a resume before it fails.
    await_timeout: float = 600.0
    #: With an executor that queues runs (Celery): how long a run may wait for a worker to start it;
    #: past it the run fails (``server_error``, ``data.reason`` ``max_queue_wait``) and is never started.
    max_queue_wait: float = 300.0
    #: Threads for agents written as plain functions or sync generators.
    sync_agent_threads: int = 32
    # memory ---------------------------------------------------------------------------------------
    #: Bytes of event log one run may write; an agent going past it fails its run. Never more than
    #: ``max_retained_bytes`` (a larger value is lowered to it).
    max_run_log_bytes: int = 32 * _MiB
    #: Bytes the store keeps of finished runs, sessions and resources (the oldest go first), and the
    #: bytes of event log the runs executing in this process may hold together (past it new runs get
    #: 429, and a run that would go further fails).
    max_retained_bytes: int = 256 * _MiB
    #: How long a finished run (and its events) is kept; sessions and resources too, from last use.
    run_retention: float = 3600.0
    #: How many finished runs are kept at most; the oldest go first. Runs still going are never evicted.
    max_finished_runs: int = 10_000
    # streams --------------------------------------------------------------------------------------
    #: Seconds of silence after which an event stream sends a comment line to keep proxies from closing it.
    heartbeat_interval: float = 15.0
    # A2A ------------------------------------------------------------------------------------------
    #: What A2A's ``ListTasks`` looks at: the newest this many tasks of a context (or of an identified
    #: owner); older ones are not listed (``GetTask`` still reads them). docs/a2a.md.
    max_listed_tasks: int = 1000
    # sessions -------------------------------------------------------------------------------------
    #: Exact origins (``scheme://host:port``) whose session URLs agents may load. Empty by default: a
    #: client must not be able to make the server fetch a URL it names. Loopback, private and
    #: link-local addresses are refused unless their exact origin is listed here.
    trusted_origins: tuple[str, ...] = ()
    #: Deadline of one history fetch (connect, headers and the whole body), and its size cap.
    history_fetch_timeout: float = 5.0
    history_max_size: int = 4 * _MiB
    #: Most remote history fetches one run may make.
    max_history_fetches: int = 100
    #: The absolute URL of the mount as clients reach it (``https://api.example.com/acp``), the base of
    #: the history URLs the server hands out; ``None``: taken from each request's ``Host``.
    public_url: str | None = None
    # shared stores --------------------------------------------------------------------------------
    #: With a shared store: how long a run outlives its worker's last sign of life before it is failed.
    lease_ttl: float = 10.0
    # operations -----------------------------------------------------------------------------------
    #: Whether the mount serves its OpenAPI document at ``{mount}/openapi.json`` (docs/operations.md);
    #: it names only the agents ``GET /agents`` shows the caller. Off, that path is a 404.
    openapi_document: bool = True
    #: Seconds between two progress lines of a run still going (DEBUG, on the ``acp_adapters`` logger).
    progress_log_interval: float = 30.0
    #: Whether requests and runs make OpenTelemetry spans and metrics (the ``otel`` extra), sent to the
    #: providers the host configures (docs/operations.md). Off: OpenTelemetry is never imported.
    telemetry: bool = False
    # browsers -------------------------------------------------------------------------------------
    #: Exact origins allowed by CORS (``*``: any); empty (the default) sends no CORS headers at all.
    cors_origins: tuple[str, ...] = ()
    #: Whether the mount serves the playground, a page at ``{mount}/playground`` that runs its agents in
    #: a browser (docs/playground.md); off, that path is a 404 like any unknown path.
    playground: bool = False
    #: Whether answers may carry internals (a failing agent's exception type and message). Never on
    #: in production.
    debug: bool = False

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            object.__setattr__(self, spec.name, _checked(spec.name, spec.type, value))
        if self.public_url is not None:
            object.__setattr__(self, "public_url", _checked_url("public_url", self.public_url))
        for origin in self.trusted_origins:
            _checked_origin("trusted_origins", origin, allow_any=False)
        for origin in self.cors_origins:
            _checked_origin("cors_origins", origin, allow_any=True)
        if self.max_run_log_bytes > self.max_retained_bytes:
            # A finished run's log over the whole budget would be dropped as soon as it ended.
            object.__setattr__(self, "max_run_log_bytes", self.max_retained_bytes)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None, **overrides: Any) -> Settings:
        """Build settings from a mapping of field names (as in ``app.config`` or Django settings).

        Raises ``ValueError`` naming any unknown key or ill-typed value.
        """
        merged = {**(values or {}), **overrides}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise ValueError(f"unknown ACP setting(s): {', '.join(unknown)}")
        return replace(cls(), **merged)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, prefix: str = "ACP_", base: Settings | None = None
    ) -> Settings:
        """``base`` (or the defaults) with every setting found in the environment as ``ACP_<NAME>``.

        ``ACP_MAX_RUN_DURATION=2``, ``ACP_TRUSTED_ORIGINS=http://127.0.0.1:8001,http://127.0.0.1:8002``
        (lists are comma-separated), ``ACP_DEBUG=1``, ``ACP_MAX_ACTIVE_RUNS_PER_OWNER=`` (empty: no
        cap). Called by the host, never by the library. Raises ``ValueError`` naming the variable.
        """
        env = os.environ if environ is None else environ
        found: dict[str, Any] = {}
        for spec in fields(cls):
            name = prefix + spec.name.upper()
            if name not in env:
                continue
            try:
                found[spec.name] = _from_text(spec.name, str(spec.type), env[name])
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return replace(base or cls(), **found)


def _checked(name: str, kind: object, value: Any) -> Any:
    kind = str(kind)
    optional = kind.endswith("| None")
    if value is None:
        if optional:
            return None
        raise ValueError(f"ACP setting {name} must not be None")
    if kind.startswith("tuple"):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ValueError(
                f"ACP setting {name} must be a list of strings, not {value!r} (write [{value!r}])"
            )
        items = tuple(value)
        if not all(isinstance(item, str) for item in items):
            raise ValueError(f"ACP setting {name} must be a list of strings, not {value!r}")
        return items
    if kind.startswith("bool"):
        if not isinstance(value, bool):
            raise ValueError(f"ACP setting {name} must be True or False, not {value!r}")
        return value
    if kind.startswith("str"):
        if not isinstance(value, str):
            raise ValueError(f"ACP setting {name} must be a string, not {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"ACP setting {name} must be a number, not {value!r}")
    if kind.startswith("int"):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"ACP setting {name} must be a whole number, not {value!r}")
        if value < 1:
            raise ValueError(f"ACP setting {name} must be at least 1, not {value!r}")
        return int(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"ACP setting {name} must be a positive number of seconds, not {value!r}")
    return float(value)


def _from_text(name: str, kind: str, text: str) -> Any:
    text = text.strip()
    if kind.startswith("tuple"):
        return tuple(item.strip() for item in text.split(",") if item.strip())
    if kind.endswith("| None") and text.lower() in ("", "none"):
        return None
    if kind.startswith("bool"):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"must be 1 or 0, not {text!r}")
    if kind.startswith("str"):
        return text
    try:
        return int(text) if kind.startswith("int") else float(text)
    except ValueError:
        raise ValueError(f"must be a number, not {text!r}") from None


def _checked_url(name: str, url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"ACP setting {name} must be an absolute http(s) URL, not {url!r}")
    return url.rstrip("/")


def _checked_origin(name: str, origin: str, *, allow_any: bool) -> None:
    from urllib.parse import urlsplit

    if allow_any and origin == "*":
        return
    try:
        parts = urlsplit(origin)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        hint = " or '*'" if allow_any else ""
        raise ValueError(f"ACP setting {name}: {origin!r} is not an origin (scheme://host[:port]){hint}")
