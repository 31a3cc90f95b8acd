"""Resources: the history messages and session state this server serves, and loading them back.

Rules this module keeps:

* A URL under this server's own ``/resources/`` (recognised from the run's base URL, whatever its
  spelling) is read straight from the store, and only if the resource has no owner or the run's
  owner: someone else's resource is "not found", exactly like a missing one.
* Any other URL is fetched only if its exact origin is trusted by the host's configuration (none by
  default), through :class:`~acp_adapters.core.safe_fetch.SafeFetcher` (addresses checked, one
  deadline, a size cap, no redirects), and at most ``max_history_fetches`` times per run.
* Whatever goes wrong, the agent (and so the client) gets the same generic error; what went wrong is
  written to the server log only.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic_core import Url

from .errors import ACPError
from .models import Error, ErrorCode
from .safe_fetch import FetchRefused, Origin, SafeFetcher
from .settings import Settings
from .store import Store

if TYPE_CHECKING:
    import httpx

__all__ = ["ResourceLoader", "ResourceUnavailable", "origin_is_trusted", "resource_url"]

logger = logging.getLogger("acp_adapters")


def resource_url(base_url: str, resource_id: uuid.UUID) -> str:
    """The absolute URL under which this server serves a resource."""
    return f"{base_url}/resources/{resource_id}"


def origin_is_trusted(url: str, trusted: Sequence[str]) -> bool:
    """Whether ``url``'s origin is exactly one of ``trusted`` (``scheme://host[:port]``): same scheme,
    host (case and IDNA spelling aside) and port (the scheme's default when none is written)."""
    try:
        origin = Origin.of(url)
    except ValueError:
        return False
    return origin in _origins(tuple(trusted))


@functools.lru_cache(maxsize=16)
def _origins(entries: tuple[str, ...]) -> frozenset[Origin]:
    origins = set()
    for entry in entries:
        try:
            origins.add(Origin.of(entry))
        except ValueError:  # Settings refuses such entries; a direct caller may not have
            continue
    return frozenset(origins)


class ResourceUnavailable(ACPError):
    """A session resource could not, or may not, be loaded.

    The message is the same whatever the reason (missing, someone else's, an untrusted origin, a
    refused address, a timeout, a bad answer): a client learns nothing from it about other
    identities' resources or the server's network. The reason is in the server log.
    """

    def __init__(self, what: str = "a history message") -> None:
        super().__init__(Error(code=ErrorCode.NOT_FOUND, message=f"could not load {what}"))


class _Refused(Exception):
    """Why a load failed, for the log."""


class ResourceLoader:
    """Loads and stores session resources for one run.

    ``base_url`` is the base under which this server hands out resource URLs for the run (the
    request's, or ``Settings.public_url``); ``owner`` is the run's owner, whose resources (and
    ownerless ones) are the only ones it loads from the store; ``http`` (``None``: no remote fetches)
    should come from :func:`~acp_adapters.core.safe_fetch.new_http_client`.
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        base_url: str,
        http: httpx.AsyncClient | None,
        *,
        owner: str | None,
        run_id: uuid.UUID | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._base_url = base_url
        self._owner = owner
        self._label = f"run {run_id}" if run_id is not None else "session"
        self._own_prefix = f"{base_url}/resources/"
        self._http = http
        self._fetches = 0

    async def store(self, data: bytes, *, owner: str | None = None) -> str:
        """Keep ``data`` as a new resource of ``owner`` (by default the run's); returns its URL."""
        resource_id = uuid.uuid4()
        await self._store.put_resource(resource_id, data, owner=owner if owner is not None else self._owner)
        return resource_url(self._base_url, resource_id)

    async def load(self, url: str, *, what: str = "a history message") -> bytes:
        """The bytes behind ``url``; raises :class:`ResourceUnavailable` (``could not load {what}``)
        if they cannot or may not be loaded, and logs why."""
        try:
            return await self._load(url)
        except (_Refused, FetchRefused) as exc:
            logger.warning("%s: could not load %s %r: %s", self._label, what, url, exc)
        except _Skipped:
            logger.debug("%s: skipped %s %r: over max_history_fetches", self._label, what, url)
        raise ResourceUnavailable(what)

    async def _load(self, url: str) -> bytes:
        if url.startswith(self._own_prefix):  # as this server hands them out
            return await self._load_own(url[len(self._own_prefix) :])
        try:
            parsed = Url(url)
            origin = Origin.of(parsed)
        except ValueError:
            raise _Refused("not an http(s) URL") from None
        own_id = self._own_resource_id(parsed, origin)
        if own_id is not None:
            return await self._load_own(own_id)
        if origin not in _origins(self._settings.trusted_origins):
            raise _Refused(f"{origin} is not a trusted origin")
        if self._http is None:
            raise _Refused("remote resources are disabled")
        if self._fetches >= self._settings.max_history_fetches:
            if self._fetches == self._settings.max_history_fetches:
                self._fetches += 1  # say it once per run
                logger.warning(
                    "%s: made max_history_fetches (%d) remote fetches: further remote resources are skipped",
                    self._label,
                    self._settings.max_history_fetches,
                )
            raise _Skipped
        self._fetches += 1
        fetcher = SafeFetcher(
            self._http,
            private_origins=self._settings.trusted_origins,
            deadline=self._settings.history_fetch_timeout,
            max_size=self._settings.history_max_size,
        )
        return await fetcher.fetch(url)

    def _own_resource_id(self, parsed: Url, origin: Origin) -> str | None:
        """The id part of a URL under this server's ``/resources/`` in another spelling, else ``None``."""
        own_origin, own_path = _own_location(self._base_url)
        if origin == own_origin and parsed.path and parsed.path.startswith(own_path):
            if parsed.query is not None or parsed.fragment is not None:
                return ""  # never a resource id: not found
            return parsed.path[len(own_path) :]
        return None

    async def _load_own(self, resource_id: str) -> bytes:
        try:
            key = uuid.UUID(resource_id)
        except ValueError:
            raise _Refused("no such resource (not an id)") from None
        if str(key) != resource_id.lower():  # uuid.UUID also reads braces, 'urn:uuid:' and no hyphens
            raise _Refused("no such resource (not an id)")
        record = await self._store.get_resource(key)
        if record is None:
            raise _Refused("no such resource")
        if record.owner is not None and record.owner != self._owner:
            raise _Refused("the resource belongs to another owner")
        return record.data


class _Skipped(Exception):
    """Past the run's cap on remote fetches."""


@functools.lru_cache(maxsize=64)
def _own_location(base_url: str) -> tuple[Origin | None, str]:
    """The origin and path prefix of this server's resource URLs under ``base_url``."""
    try:
        parsed = Url(base_url)
        origin = Origin.of(parsed)
    except ValueError:
        return None, ""
    return origin, f"{(parsed.path or '').rstrip('/')}/resources/"
