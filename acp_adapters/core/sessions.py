"""Session resources: the history messages and state this server serves, and loading them back.

Rules this module keeps:

* A URL under this server's own ``/resources/`` is read straight from the store.
* Any other URL is fetched only if its origin is trusted by the host's configuration (none by default),
  with a time limit and a size cap, never following redirects: a client must not be able to make
  the server fetch a URL of its choosing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .errors import ACPError
from .models import Error, ErrorCode
from .settings import Settings
from .store import Store

if TYPE_CHECKING:
    import httpx

__all__ = ["ResourceLoader", "origin_is_trusted", "resource_url"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def resource_url(base_url: str, resource_id: uuid.UUID) -> str:
    """The absolute URL under which this server serves a resource."""
    return f"{base_url}/resources/{resource_id}"


def origin_is_trusted(url: str, trusted: Sequence[str]) -> bool:
    """Whether ``url``'s origin matches one of ``trusted`` (``scheme://host:port``, port ``*`` for any)."""
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return False
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return False
    for entry in trusted:
        scheme, _, rest = entry.partition("://")
        host, _, want_port = rest.rstrip("/").rpartition(":")
        if not host:
            host, want_port = want_port, str(_DEFAULT_PORTS.get(scheme, ""))
        if scheme != parts.scheme or host.strip("[]").lower() != parts.hostname.lower():
            continue
        if want_port == "*" or want_port == str(port):
            return True
    return False


class ResourceLoader:
    """Loads and stores session resources for one run (the run's base URL decides what is "own")."""

    def __init__(
        self, store: Store, settings: Settings, base_url: str, http: httpx.AsyncClient | None
    ) -> None:
        self._store = store
        self._settings = settings
        self._base_url = base_url
        self._own_prefix = f"{base_url}/resources/"
        self._http = http

    async def store(self, data: bytes, *, owner: str | None = None) -> str:
        """Keep ``data`` as a new resource; returns its URL."""
        resource_id = uuid.uuid4()
        await self._store.put_resource(resource_id, data, owner=owner)
        return resource_url(self._base_url, resource_id)

    async def load(self, url: str) -> bytes:
        """The bytes behind ``url``; raises :class:`ACPError` if it cannot or may not be loaded."""
        if url.startswith(self._own_prefix):
            try:
                resource_id = uuid.UUID(url[len(self._own_prefix) :])
            except ValueError:
                raise _not_found(url) from None
            record = await self._store.get_resource(resource_id)
            if record is None:
                raise _not_found(url)
            return record.data
        if not origin_is_trusted(url, self._settings.trusted_origins):
            raise ACPError(
                Error(code=ErrorCode.INVALID_INPUT, message=f"{url} is not on an origin this server trusts")
            )
        if self._http is None:
            raise ACPError(Error(code=ErrorCode.SERVER_ERROR, message="remote resources are disabled"))
        return await self._fetch(url)

    async def _fetch(self, url: str) -> bytes:
        assert self._http is not None
        cap = self._settings.history_max_size
        async with self._http.stream("GET", url, timeout=self._settings.history_fetch_timeout) as response:
            if response.status_code != 200:
                raise ACPError(
                    Error(code=ErrorCode.SERVER_ERROR, message=f"{url} answered {response.status_code}")
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > cap:
                    raise ACPError(Error(code=ErrorCode.SERVER_ERROR, message=f"{url} is over {cap} bytes"))
                chunks.append(chunk)
        return b"".join(chunks)


def _not_found(url: str) -> ACPError:
    return ACPError(Error(code=ErrorCode.NOT_FOUND, message=f"no resource at {url}"))
