"""Session history URLs cannot make the server reach what it must not (SSRF), nor tell a client why.

A real HTTP server on 127.0.0.1 (in a thread) plays the loopback service an attacker aims at, and the
trusted peer a host may name in ``trusted_origins``. Every request it gets is recorded, so "refused"
means "never reached", not only "not shown". Only 127.0.0.1 and localhost are ever connected to.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from acp_adapters import ACPService, AgentRegistry, Context, Settings
from acp_adapters.core.resources import origin_is_trusted
from acp_adapters.core.safe_fetch import (
    FetchRefused,
    SafeFetcher,
    address_is_public,
    new_http_client,
    resolve_checked,
)
from acp_adapters.models import Message
from tests.deployments.base import Target
from tests.engine.conftest import Call
from tests.helpers import output_texts, run_body, run_sync

GENERIC_STATE_ERROR = "could not load the session state"


# the local server ---------------------------------------------------------------------------------
class LocalServer:
    """A threaded HTTP server on 127.0.0.1 that records what it is asked."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []  # (path, Host header)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]  # read back by _Handler through self.server
        self.port = self.httpd.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.seen]


def message_json(text: str) -> bytes:
    return json.dumps({"role": "user", "parts": [{"content_type": "text/plain", "content": text}]}).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        server: LocalServer = self.server.owner  # type: ignore[attr-defined]  # set by LocalServer
        server.seen.append((self.path, self.headers.get("Host", "")))
        route, _, arg = self.path.lstrip("/").partition("/")
        try:
            if route == "message":
                self._answer(200, message_json(arg))
            elif route == "redirect":
                self._answer(302, b"", [("Location", f"/message/{arg}")])
            elif route == "big":  # a valid message padded past any small cap, its length declared
                self._answer(200, message_json("big") + b" " * int(arg))
            elif route == "chunked":  # the same without a length: only counting can stop it
                self._chunked(message_json("big") + b" " * int(arg))
            elif route == "gzip":
                self._answer(200, message_json("zipped"), [("Content-Encoding", "gzip")])
            elif route == "slow":  # headers at once, then one byte every 50 ms for ~20 s
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "400")
                self.end_headers()
                for _ in range(400):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.05)
            else:
                self._answer(404, b"secret-admin-page on port %d" % server.port)
        except OSError:  # the client went away (as it should from a slow answer)
            pass

    def _answer(self, status: int, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _chunked(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(body), 512):
            piece = body[start : start + 512]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def local_server() -> Iterator[LocalServer]:
    server = LocalServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def server(local_server: LocalServer) -> LocalServer:
    local_server.seen.clear()
    return local_server


# address checks -----------------------------------------------------------------------------------
NOT_PUBLIC = [
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "224.0.0.1",  # multicast (is_global alone lets it through)
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "2001:db8::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
]
# Values only: these are classified, never connected to.
PUBLIC = ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:93.184.216.34", "64:ff9b::5db8:d822"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not address_is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert address_is_public(ipaddress.ip_address(address))


LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "0x7f.1",
    "localhost",
    "[::1]",
    "::ffff:127.0.0.1",
    "[::ffff:127.0.0.1]",
]


@pytest.mark.anyio
@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
async def test_every_spelling_of_loopback_resolves_to_a_refused_address(host: str) -> None:
    with pytest.raises(FetchRefused, match="non-public"):
        await resolve_checked(host, 80, allow_private=False)
    allowed = await resolve_checked(host, 80, allow_private=True)
    assert allowed and all(
        address.is_loopback
        or (isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None)
        for address in allowed
    )


def test_trusted_origins_match_exactly() -> None:
    trusted = ("http://127.0.0.1:8001", "https://peer.example", "https://bücher.example:8443")
    assert origin_is_trusted("http://127.0.0.1:8001/acp/resources/x", trusted)
    assert origin_is_trusted("HTTP://127.0.0.1:8001/x", trusted)
    assert origin_is_trusted("https://PEER.example/r", trusted)
    assert origin_is_trusted("https://peer.example:443/r", trusted)  # the default port, written
    assert origin_is_trusted("https://xn--bcher-kva.example:8443/r", trusted)  # IDNA, either spelling
    assert origin_is_trusted("https://BÜCHER.example:8443/r", trusted)
    for url in (
        "http://127.0.0.1:8002/x",  # another port
        "http://127.0.0.1/x",  # the default port is another port
        "https://127.0.0.1:8001/x",  # another scheme
        "http://peer.example/r",
        "https://peer.example:8443/r",
        "http://localhost:8001/x",  # the same machine, another origin
        "http://127.0.0.1.evil.example:8001/",
        "http://127.0.0.1:8001@evil.example/",  # userinfo: the host is evil.example
        "https://sub.peer.example/r",
        "file:///etc/passwd",
        "not a url",
    ):
        assert not origin_is_trusted(url, trusted), url
    assert not origin_is_trusted("http://127.0.0.1:9000/", ("http://127.0.0.1:*",))  # no wildcards


# the fetcher against a real server ----------------------------------------------------------------
def fetcher(*, trusted: tuple[str, ...] = (), deadline: float = 5.0, max_size: int = 1 << 20) -> SafeFetcher:
    return SafeFetcher(new_http_client(), private_origins=trusted, deadline=deadline, max_size=max_size)


URL_SPELLINGS = [
    "http://127.0.0.1:{port}/message/a",
    "http://127.1:{port}/message/a",
    "http://2130706433:{port}/message/a",
    "http://0x7f000001:{port}/message/a",
    "http://0177.0.0.1:{port}/message/a",
    "http://localhost:{port}/message/a",
    "http://LOCALHOST.:{port}/message/a",
    "http://[::1]:{port}/message/a",
    "http://[::ffff:127.0.0.1]:{port}/message/a",
    "http://[::ffff:7f00:1]:{port}/message/a",
]


@pytest.mark.anyio
@pytest.mark.parametrize("spelling", URL_SPELLINGS)
async def test_loopback_is_never_reached_whatever_the_spelling(server: LocalServer, spelling: str) -> None:
    with pytest.raises(FetchRefused, match=r"non-public|could not resolve"):
        await fetcher().fetch(spelling.format(port=server.port))
    assert server.seen == []


@pytest.mark.anyio
async def test_a_trusted_origin_is_fetched_from_the_address_checked_with_its_own_host_header(
    server: LocalServer,
) -> None:
    assert await fetcher(trusted=(server.origin,)).fetch(server.url("/message/hi")) == message_json("hi")
    # localhost may resolve to ::1 first, where nothing listens: the next checked address is tried
    localhost = f"http://localhost:{server.port}"
    assert await fetcher(trusted=(localhost,)).fetch(server.url("/message/lo", "localhost"))
    assert server.seen == [
        ("/message/hi", f"127.0.0.1:{server.port}"),
        ("/message/lo", f"localhost:{server.port}"),
    ]
    # trusting 127.0.0.1 does not trust localhost, another port, or https on the same port
    for url in (server.url("/message/x", "localhost"), f"https://127.0.0.1:{server.port}/message/x"):
        with pytest.raises(FetchRefused, match="non-public"):
            await fetcher(trusted=(server.origin,)).fetch(url)
    with pytest.raises(FetchRefused, match="non-public"):
        await fetcher(trusted=(f"http://127.0.0.1:{server.port + 1}",)).fetch(server.url("/message/x"))
    assert len(server.seen) == 2


@pytest.mark.anyio
async def test_a_slow_trickle_is_cut_at_one_deadline_for_the_whole_fetch(server: LocalServer) -> None:
    deadline = 0.5
    started = time.monotonic()
    with pytest.raises(FetchRefused, match="took longer than"):
        await fetcher(trusted=(server.origin,), deadline=deadline).fetch(server.url("/slow"))
    elapsed = time.monotonic() - started
    assert deadline * 0.9 < elapsed < 2 * deadline, elapsed  # each read was quick: only the total stops it
    assert server.paths() == ["/slow"]


@pytest.mark.anyio
@pytest.mark.parametrize(("path", "why"), [("/big/5000", "declared"), ("/chunked/5000", "more than 1000")])
async def test_a_body_over_the_cap_is_refused(server: LocalServer, path: str, why: str) -> None:
    with pytest.raises(FetchRefused, match=why):
        await fetcher(trusted=(server.origin,), max_size=1000).fetch(server.url(path))
    assert await fetcher(trusted=(server.origin,), max_size=1000).fetch(server.url("/chunked/10"))


@pytest.mark.anyio
@pytest.mark.parametrize(("path", "why"), [("/redirect/x", "answered 302"), ("/gzip", "content-encoding")])
async def test_redirects_and_compressed_answers_are_not_followed(
    server: LocalServer, path: str, why: str
) -> None:
    with pytest.raises(FetchRefused, match=why):
        await fetcher(trusted=(server.origin,)).fetch(server.url(path))
    assert server.paths() == [path]  # the redirect's target was never asked for


@pytest.mark.anyio
async def test_urls_with_credentials_are_not_fetched(server: LocalServer) -> None:
    with pytest.raises(FetchRefused, match="credentials"):
        await fetcher(trusted=(server.origin,)).fetch(f"http://user:pw@127.0.0.1:{server.port}/message/x")
    assert server.seen == []


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalServer, str, list[str]]]:
    """The local server behind TLS, with a certificate for ``localhost`` only; records the SNI names."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
    ]
    command += ["-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        command,
        check=True,
        capture_output=True,
    )
    names: list[str] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def record_sni(_socket: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        names.append(str(name))

    context.sni_callback = record_sni
    server = LocalServer()
    server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
    server.thread.start()
    yield server, str(cert), names
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.mark.anyio
async def test_https_goes_to_the_checked_address_with_the_name_as_sni_and_verified(
    tls_server: tuple[LocalServer, str, list[str]],
) -> None:
    server, cafile, names = tls_server
    server.seen.clear()

    def tls_fetcher(origin: str) -> SafeFetcher:
        client = httpx.AsyncClient(
            verify=ssl.create_default_context(cafile=cafile),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        return SafeFetcher(client, private_origins=(origin,), deadline=5.0, max_size=1 << 20)

    url = f"https://localhost:{server.port}/message/tls"
    assert await tls_fetcher(f"https://localhost:{server.port}").fetch(url) == message_json("tls")
    assert names[-1] == "localhost" and server.seen == [("/message/tls", f"localhost:{server.port}")]
    # the certificate is checked against the URL's name: one for localhost does not do for 127.0.0.1
    with pytest.raises(FetchRefused, match="CERTIFICATE_VERIFY_FAILED"):
        await tls_fetcher(f"https://127.0.0.1:{server.port}").fetch(
            f"https://127.0.0.1:{server.port}/message/x"
        )
    assert len(server.seen) == 1


# the whole service: what the agent and the client see ----------------------------------------------
def history_registry() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent(name="history-echo")
    async def history_echo(input: list[Message], context: Context) -> AsyncIterator[Message]:
        async for message in context.session.load_history():
            yield message
        for message in input:
            yield message

    @agents.agent(name="state-echo")
    async def state_echo(input: list[Message], context: Context) -> AsyncIterator[str]:
        state = await context.session.load_state()
        yield (state or b"").decode()

    return agents


@pytest.fixture
async def service_call() -> AsyncIterator[Any]:
    services: list[ACPService] = []

    def make(**settings: Any) -> Call:
        service = ACPService(history_registry(), settings=Settings(**settings))
        services.append(service)
        return Call(service)

    yield make
    for service in services:
        await service.aclose()


def texts(run: dict[str, Any]) -> list[str]:
    return [message["parts"][0]["content"] for message in run["output"]]


async def run_with_history(call: Call, history: list[str], text: str = "mine") -> dict[str, Any]:
    session = {"id": str(uuid.uuid4()), "history": history}
    status, run = await call.json("POST", "/runs", {**run_body("history-echo", text), "session": session})
    assert status == 200 and run["status"] == "completed", run
    return dict(run)


@pytest.mark.anyio
async def test_history_on_an_untrusted_loopback_origin_is_never_fetched(
    server: LocalServer, service_call: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="acp_adapters")
    urls = [spelling.format(port=server.port) for spelling in URL_SPELLINGS]
    run = await run_with_history(service_call(), urls)
    assert texts(run) == ["mine"]
    assert server.seen == []
    assert all("not a trusted origin" in record.getMessage() for record in caplog.records)
    assert len(caplog.records) == len(urls)


@pytest.mark.anyio
async def test_history_on_a_trusted_origin_is_loaded(server: LocalServer, service_call: Any) -> None:
    call = service_call(trusted_origins=[server.origin])
    run = await run_with_history(call, [server.url("/message/one"), server.url("/message/two")])
    assert texts(run) == ["one", "two", "mine"]
    assert server.paths() == ["/message/one", "/message/two"]


@pytest.mark.anyio
async def test_a_run_makes_at_most_max_history_fetches(
    server: LocalServer, service_call: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="acp_adapters")
    call = service_call(trusted_origins=[server.origin], max_history_fetches=3)
    run = await run_with_history(call, [server.url(f"/message/{i}") for i in range(6)])
    assert texts(run) == ["0", "1", "2", "mine"]
    assert server.paths() == ["/message/0", "/message/1", "/message/2"]
    said = [record.getMessage() for record in caplog.records if "max_history_fetches" in record.getMessage()]
    assert len(said) == 1  # once per run, not once per skipped URL
    await run_with_history(call, [server.url("/message/again")])  # the cap is per run
    assert server.paths()[-1] == "/message/again"


@pytest.mark.anyio
async def test_a_slow_history_server_holds_a_run_no_longer_than_the_deadline(
    server: LocalServer, service_call: Any
) -> None:
    call = service_call(trusted_origins=[server.origin], history_fetch_timeout=0.5)
    started = time.monotonic()
    run = await run_with_history(call, [server.url("/slow"), server.url("/message/after")])
    assert time.monotonic() - started < 1.0
    assert texts(run) == ["after", "mine"]


FAILING_URLS = [
    "http://127.0.0.1:{port}/missing",  # 404
    "http://127.0.0.1:{port}/redirect/x",  # 302
    "http://127.0.0.1:{port}/big/100000",  # over history_max_size
    "http://localhost:{port}/message/x",  # not trusted, and loopback
    "http://127.0.0.1:1/message/x",  # nothing listens: "timing maps ports otherwise"
    "http://test/acp/resources/" + str(uuid.uuid4()),  # this server's own, missing
]


@pytest.mark.anyio
@pytest.mark.parametrize("url", FAILING_URLS)
async def test_the_client_sees_one_generic_error_whatever_went_wrong(
    server: LocalServer, service_call: Any, caplog: pytest.LogCaptureFixture, url: str
) -> None:
    caplog.set_level(logging.WARNING, logger="acp_adapters")
    call = service_call(trusted_origins=[server.origin], history_max_size=10_000)
    session = {"id": str(uuid.uuid4()), "history": [], "state": url.format(port=server.port)}
    status, run = await call.json("POST", "/runs", {**run_body("state-echo"), "session": session})
    assert status == 200 and run["status"] == "failed"
    assert run["error"] == {"code": "not_found", "message": GENERIC_STATE_ERROR}
    assert "secret" not in json.dumps(run) and str(server.port) not in json.dumps(run["error"])
    assert any(
        "could not load the session state" in r.getMessage() for r in caplog.records
    )  # the log says why


# every deployment, with its default configuration -------------------------------------------------
def test_no_deployment_fetches_history_from_loopback(target: Target, local_server: LocalServer) -> None:
    local_server.seen.clear()
    urls = [spelling.format(port=local_server.port) for spelling in URL_SPELLINGS]
    run = run_sync(target, "history-echo", "mine", session={"id": str(uuid.uuid4()), "history": urls})
    assert run["status"] == "completed" and output_texts(run) == ["mine"]
    assert local_server.seen == []
