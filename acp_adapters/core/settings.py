"""Settings of an ACP service, shared by every adapter."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings:
    """What a host may tune. Every adapter accepts these (as arguments, ``app.config`` or Django settings).

    Times are in seconds, sizes in bytes.
    """

    #: Largest request body accepted; a larger one gets 413.
    max_body_size: int = 4 * 1024 * 1024
    #: How long an awaiting run waits for a resume before it fails.
    await_timeout: float = 600.0
    #: How long a finished run (and its events) is kept.
    run_retention: float = 3600.0
    #: How many finished runs are kept at most; the oldest go first. Runs still going are never evicted.
    max_finished_runs: int = 10_000
    #: Seconds of silence after which an event stream sends a comment line to keep proxies from closing it.
    heartbeat_interval: float = 15.0
    #: Threads for agents written as plain functions or sync generators.
    sync_agent_threads: int = 32
    #: Origins (``scheme://host:port``, ``*`` for any port) whose session URLs agents may load.
    #: Empty by default: a client must not be able to make the server fetch a URL it names.
    trusted_origins: tuple[str, ...] = ()
    #: Time limit and size cap when loading a history message from a trusted origin.
    history_fetch_timeout: float = 5.0
    history_max_size: int = 4 * 1024 * 1024
    #: With a shared store: how long a run outlives its worker's last sign of life before it is failed.
    lease_ttl: float = 10.0
    #: Origins allowed by CORS; empty (the default) sends no CORS headers at all.
    cors_origins: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None = None, **overrides: Any) -> Settings:
        """Build settings from a mapping of field names (as in ``app.config`` or Django settings).

        Raises ``ValueError`` naming any unknown key or ill-typed value.
        """
        merged = {**(values or {}), **overrides}
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(merged) - set(known))
        if unknown:
            raise ValueError(f"unknown ACP setting(s): {', '.join(unknown)}")
        clean: dict[str, Any] = {}
        for name, value in merged.items():
            default = getattr(cls, name)
            if isinstance(default, tuple):
                if isinstance(value, str) or not hasattr(value, "__iter__"):
                    raise ValueError(f"ACP setting {name} must be a list of strings")
                value = tuple(str(v) for v in value)
            elif isinstance(default, bool) or not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"ACP setting {name} must be a number, not {value!r}")
            elif value < 0 or (isinstance(default, int) and not isinstance(value, int)):
                raise ValueError(f"ACP setting {name} must be a non-negative {type(default).__name__}")
            clean[name] = value
        return replace(cls(), **clean)
