"""Fetching a URL a client named without letting the client reach what it must not (SSRF).

Rules this module keeps:

* One parser reads the URL: the WHATWG one of pydantic-core, the same that read the client's request.
  The origin compared, the host resolved and the request sent all come from that one reading, so
  ``127.1``, ``2130706433``, ``0x7f000001`` or ``[::ffff:127.0.0.1]`` cannot mean one thing to the
  check and another to the connection.
* The host is resolved here, and every address it has is checked: loopback, private, link-local,
  multicast, reserved and unspecified addresses (also inside IPv4-mapped, 6to4, Teredo and NAT64
  IPv6 addresses) are refused unless the URL's exact origin is one the host allows. The connection
  then goes to an address that was checked, with the original ``Host`` header and TLS server name:
  the name is never resolved again, so it cannot point elsewhere at connect time (DNS rebinding).
* One deadline covers resolving, connecting, the headers and the whole body; the body has a size cap.
  No redirects, no proxies, no compression (a small body cannot inflate), no connection reuse (a
  connection verified for one name never carries a request for another).
* Every failure raises :class:`FetchRefused` with a detail meant for the server log only.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
from pydantic_core import Url

if TYPE_CHECKING:
    import httpx

__all__ = [
    "FetchRefused",
    "Origin",
    "SafeFetcher",
    "address_is_public",
    "new_http_client",
    "resolve_checked",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class FetchRefused(Exception):
    """A fetch was refused or failed; the message says why, for the server log (never for a client)."""


@dataclass(frozen=True)
class Origin:
    """A URL's origin as the WHATWG parser reads it: scheme, host (lower case, IDNA-encoded, IP
    addresses in canonical form) and port (the scheme's default filled in)."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str | Url) -> Origin:
        """The origin of an http(s) ``url``; raises ``ValueError`` for anything else."""
        parsed = _parse(url)
        assert parsed.host is not None and parsed.port is not None  # checked by _parse
        return cls(parsed.scheme, parsed.host, parsed.port)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def _parse(url: str | Url) -> Url:
    try:
        parsed = url if isinstance(url, Url) else Url(url)
    except ValueError:
        raise ValueError(f"{url!r} is not a URL") from None
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.host or parsed.port is None:
        raise ValueError(f"{url!r} is not an http(s) URL")
    return parsed


def address_is_public(address: IPAddress) -> bool:
    """Whether ``address`` is a public unicast address: not loopback, private, link-local, multicast,
    reserved or unspecified, nor an IPv6 form (IPv4-mapped, 6to4, Teredo, NAT64) of such an address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded: list[ipaddress.IPv4Address] = []
        if address.ipv4_mapped is not None:
            embedded.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            embedded.append(address.sixtofour)
        if address.teredo is not None:
            embedded.extend(address.teredo)
        if address in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if not all(address_is_public(inner) for inner in embedded):
            return False
        if address.ipv4_mapped is not None or address in _NAT64:
            return True  # these prefixes are listed as private or reserved: the IPv4 address decides
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


async def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[IPAddress]:
    """The addresses of ``host``, resolved here; raises :class:`FetchRefused` if it has none, or if any
    of them is not public and ``allow_private`` is false (one bad address refuses the whole name)."""
    literal = _ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            raise FetchRefused(f"could not resolve {host}: {exc}") from None
        addresses = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).partition("%")[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise FetchRefused(f"{host} has no address")
    if not allow_private:
        refused = [str(address) for address in addresses if not address_is_public(address)]
        if refused:
            raise FetchRefused(f"{host} resolves to a non-public address ({', '.join(refused)})")
    return addresses


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def new_http_client() -> httpx.AsyncClient:
    """The HTTP client :class:`SafeFetcher` expects: no redirects, no proxies or settings from the
    environment, no kept-alive connections."""
    import httpx

    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


class SafeFetcher:
    """GETs URLs under the rules of this module.

    ``private_origins``: exact origins (``scheme://host[:port]``) whose hosts may resolve to addresses
    that are not public (a peer instance on the same machine or network).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        private_origins: Collection[str],
        deadline: float,
        max_size: int,
    ) -> None:
        self._client = client
        self._private_origins = frozenset(Origin.of(origin) for origin in private_origins)
        self._deadline = deadline
        self._max_size = max_size

    async def fetch(self, url: str) -> bytes:
        """The body of a ``200`` answer to ``GET url``; raises :class:`FetchRefused` otherwise."""
        try:
            parsed = _parse(url)
        except ValueError as exc:
            raise FetchRefused(str(exc)) from None
        if parsed.username is not None or parsed.password is not None:
            raise FetchRefused("URLs with credentials are not fetched")
        origin = Origin.of(parsed)
        try:
            with anyio.fail_after(self._deadline):
                return await self._fetch(parsed, origin)
        except TimeoutError:
            raise FetchRefused(f"{origin} took longer than {self._deadline} s") from None

    async def _fetch(self, url: Url, origin: Origin) -> bytes:
        import httpx

        allow_private = origin in self._private_origins
        addresses = await resolve_checked(origin.host, origin.port, allow_private=allow_private)
        default_port = origin.port == _DEFAULT_PORTS[origin.scheme]
        headers = {
            "Host": origin.host if default_port else f"{origin.host}:{origin.port}",
            "Accept": "application/json",
            "Accept-Encoding": "identity",
        }
        extensions = {}
        if origin.scheme == "https" and _ip_literal(origin.host) is None:
            extensions["sni_hostname"] = origin.host  # the name the certificate must be valid for
        target = url.path or "/"
        if url.query is not None:
            target += f"?{url.query}"
        last_error: Exception | None = None
        for address in addresses:
            literal = f"[{address}]" if address.version == 6 else str(address)
            request = self._client.build_request(
                "GET",
                f"{origin.scheme}://{literal}:{origin.port}{target}",
                headers=headers,
                extensions=extensions,
                timeout=self._deadline,
            )
            try:
                response = await self._client.send(request, stream=True, follow_redirects=False)
            except httpx.ConnectError as exc:  # try the name's next address
                last_error = exc
                continue
            except httpx.HTTPError as exc:
                raise FetchRefused(f"{origin} ({address}): {type(exc).__name__}: {exc}") from None
            try:
                return await self._read(response, origin, address)
            finally:
                await response.aclose()
        raise FetchRefused(f"could not connect to {origin}: {last_error}")

    async def _read(self, response: httpx.Response, origin: Origin, address: IPAddress) -> bytes:
        import httpx

        where = f"{origin} ({address})"
        if response.status_code != 200:
            raise FetchRefused(f"{where} answered {response.status_code}")
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding != "identity":
            raise FetchRefused(f"{where} answered with content-encoding {encoding!r}")
        declared = response.headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self._max_size:
            raise FetchRefused(f"{where} declared {declared.strip()} bytes, over {self._max_size}")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_raw():
                size += len(chunk)
                if size > self._max_size:
                    raise FetchRefused(f"{where} sent more than {self._max_size} bytes")
                chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise FetchRefused(f"{where}: {type(exc).__name__}: {exc}") from None
        return b"".join(chunks)
