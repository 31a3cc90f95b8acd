"""Under uvicorn, the example's ``asgi_body_limit`` refuses a body over ``max_body_size`` before Django
reads it: a 200 MiB ``Content-Length`` gets its 413 at once, a chunked body after a little over the
limit, and the connection is closed instead of the server reading (and throwing away) the rest.
Without the wrapper, Django's ``ASGIHandler`` would read either body to its end first."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from acp_adapters.core.settings import Settings
from tests.deployments.base import Target, serve
from tests.helpers import acp_error, ok_json, run_body

pytestmark = [pytest.mark.django, pytest.mark.slow]

LIMIT = Settings().max_body_size
MIB = 1024 * 1024
CLAIMED = 200 * MIB
PIECE = b"x" * (64 * 1024)


@pytest.fixture(scope="module")
def uvicorn() -> Iterator[Target]:
    """``example_django.asgi`` (with ``/probe``, tests.django.settings) under uvicorn."""
    command = [
        "{python}",
        "-m",
        "uvicorn",
        "example_django.asgi:application",
        "--host",
        "{host}",
        "--port",
        "{port}",
    ]
    env = {"DJANGO_SETTINGS_MODULE": "tests.django.settings"}
    with serve(command, env=env, name="django-tests-body-limit") as target:
        yield target


class Upload:
    """One request on a raw socket: the head, then body pieces sent from a thread until the server
    answers or closes; ``sent`` is how many body bytes left this side."""

    def __init__(self, target: Target, head: bytes, pieces: Iterable[bytes]) -> None:
        url = urlsplit(target.base_url)
        assert url.hostname is not None and url.port is not None, target.base_url
        self.sock = socket.create_connection((url.hostname, url.port), timeout=30)
        self.sock.sendall(head)
        self.sent = 0
        self.finished = False
        self._pieces = pieces
        self._thread = threading.Thread(target=self._send, daemon=True)
        self._thread.start()

    def _send(self) -> None:
        try:
            for piece in self._pieces:
                self.sock.sendall(piece)
                self.sent += len(piece)
            self.finished = True
        except OSError:
            pass  # the server closed the connection

    def answer(self) -> tuple[int, dict[str, str], bytes, int]:
        """The status, headers and body of the answer, and how many body bytes were sent by then."""
        data = b""
        while b"\r\n\r\n" not in data:
            data += self._recv()
        head, _, body = data.partition(b"\r\n\r\n")
        sent_then = self.sent
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        while len(body) < int(headers["content-length"]):
            body += self._recv()
        return int(lines[0].split()[1]), headers, body, sent_then

    def closed_by_server(self) -> bool:
        """Whether the server ends the connection (rather than reading the rest of the body)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()
        self._thread.join(timeout=30)

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        assert chunk, "the server closed the connection without answering"
        return chunk


def head(target: Target, path: str, *headers: str) -> bytes:
    url = urlsplit(target.base_url)
    lines = [
        f"POST {url.path}{path} HTTP/1.1",
        f"Host: {url.netloc}",
        "Content-Type: application/json",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def pieces(total: int, *, chunked: bool = False) -> Iterator[bytes]:
    for _ in range(total // len(PIECE)):
        yield b"%x\r\n%s\r\n" % (len(PIECE), PIECE) if chunked else PIECE
    if chunked:
        yield b"0\r\n\r\n"


def check_413(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 413
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert json.loads(body) == {
        "code": "invalid_input",
        "message": f"request body is larger than {LIMIT} bytes",
        "data": {"max_body_size": LIMIT},
    }


def test_a_claimed_200_mib_body_is_refused_before_it_is_read(uvicorn: Target) -> None:
    upload = Upload(uvicorn, head(uvicorn, "/runs", f"Content-Length: {CLAIMED}"), pieces(CLAIMED))
    try:
        status, headers, body, sent = upload.answer()
        check_413(status, headers, body)
        assert sent < LIMIT  # answered before even the limit's worth had been sent
        assert upload.closed_by_server()
    finally:
        upload.close()
    assert not upload.finished


def test_a_large_chunked_body_is_refused_after_the_limit(uvicorn: Target) -> None:
    upload = Upload(
        uvicorn, head(uvicorn, "/runs", "Transfer-Encoding: chunked"), pieces(CLAIMED, chunked=True)
    )
    try:
        status, headers, body, sent = upload.answer()
        check_413(status, headers, body)
        assert sent < LIMIT + 16 * MIB  # the limit, and what the socket buffers hold
        assert upload.closed_by_server()
    finally:
        upload.close()
    assert not upload.finished and upload.sent < CLAIMED


def test_bodies_within_the_limit_and_other_paths_are_served_as_before(uvicorn: Target) -> None:
    text = "x" * (LIMIT - 1000)
    run = ok_json(uvicorn.client.request("POST", "/runs", json=run_body("echo", text)), 200, "Run")
    assert run["output"][0]["parts"][0]["content"] == text
    chunked = httpx.post(
        uvicorn.base_url + "/runs",
        content=iter([json.dumps(run_body("echo", "chunked")).encode()]),  # an iterator: sent chunked
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert chunked.status_code == 200 and chunked.json()["output"][0]["parts"][0]["content"] == "chunked"
    # The project's own views are not the wrapper's business: Django reads a body over the ACP limit
    # sent to /probe (a GET, which CsrfViewMiddleware lets through) and the view answers.
    probe = uvicorn.base_url.rsplit("/acp", 1)[0] + "/probe"
    assert httpx.request("GET", probe, content=b"x" * (LIMIT + MIB), timeout=30).status_code == 200


def test_the_415_passes_through_the_wrapper(uvicorn: Target) -> None:
    body = json.dumps(run_body("echo", "hi")).encode()
    answer = uvicorn.client.request("POST", "/runs", content=body, headers={"Content-Type": "text/plain"})
    assert acp_error(answer, 415, "invalid_input")["data"] == {"content_type": "text/plain"}
