"""A minimal HTTP/1.1 client on asyncio streams, fast enough to load a bare route on one core.

Only what the benchmark needs: keep-alive connections to one loopback server, requests with a small
body, responses with ``Content-Length``, chunked bodies or a body that ends with the connection.
Every read is bounded by the caller's timeout (``asyncio.wait_for``/``asyncio.timeout``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

__all__ = ["Connection", "HTTPError", "Reply", "build_request"]

_READ_SIZE = 256 * 1024


class HTTPError(Exception):
    """The server broke HTTP/1.1 (or closed the connection mid-answer)."""


@dataclass
class Reply:
    """A complete answer."""

    status: int
    headers: dict[bytes, bytes]
    body: bytes


def build_request(
    method: str, host: str, port: int, path: str, body: bytes | None = None, headers: tuple[str, ...] = ()
) -> bytes:
    """The bytes of one request (built once and sent many times by the load loops); ``headers`` are
    extra ``Name: value`` lines."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: */*", *headers]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def _parse_head(head: bytes) -> tuple[int, dict[bytes, bytes]]:
    lines = head.split(b"\r\n")
    status_line = lines[0]
    if not status_line.startswith(b"HTTP/1."):
        raise HTTPError(f"bad status line {status_line[:80]!r}")
    status = int(status_line[9:12])
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
    return status, headers


class Connection:
    """One keep-alive connection; reopened transparently when the server closed it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=_READ_SIZE)
        return self._reader, self._writer

    def close(self) -> None:
        """Drop the connection (the next request opens a new one)."""
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def _send(self, raw: bytes) -> tuple[asyncio.StreamReader, int, dict[bytes, bytes]]:
        reader, writer = await self._open()
        writer.write(raw)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.close()
            raise HTTPError(f"connection lost before the answer: {exc!r}") from None
        status, headers = _parse_head(head)
        return reader, status, headers

    async def request(self, raw: bytes) -> Reply:
        """Send a prepared request and read the whole answer."""
        reader, status, headers = await self._send(raw)
        body = b"".join([chunk async for chunk in self._body(reader, headers)])
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return Reply(status, headers, body)

    async def stream(self, raw: bytes) -> tuple[int, dict[bytes, bytes], AsyncIterator[bytes]]:
        """Send a prepared request; give the status, headers and the body as it arrives."""
        reader, status, headers = await self._send(raw)
        return status, headers, self._body(reader, headers)

    async def _body(self, reader: asyncio.StreamReader, headers: dict[bytes, bytes]) -> AsyncIterator[bytes]:
        try:
            length = headers.get(b"content-length")
            if length is not None:
                if int(length):
                    yield await reader.readexactly(int(length))
            elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                while True:
                    size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";", 1)[0], 16)
                    if size == 0:
                        await reader.readuntil(b"\r\n")  # no trailers are sent to us
                        return
                    data = await reader.readexactly(size + 2)
                    yield data[:-2]
            else:  # the body ends with the connection
                while data := await reader.read(_READ_SIZE):
                    yield data
                self.close()
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.close()
            raise HTTPError(f"connection lost mid-body: {exc!r}") from None
