"""The attacks of issue 10, replayed as an anonymous client, another identity or a cross-site page would,
and shown refused by the default configuration of the library and of the examples.

Tests taking ``target`` run against every deployment as it is started for the contract suite (the
examples with their defaults, no token in ``ACP_DEMO_TOKENS``). Attacks that need a small limit to be
reached quickly run against an in-process ``ACPApp`` with small :class:`Settings`; those that need two
identities run against the examples started with ``ACP_DEMO_TOKENS``.

Attacks tested elsewhere, and not repeated here (docs/security.md lists them all):

* loopback and private addresses in session history (SSRF): tests/security/test_ssrf.py;
* ``text/plain`` and cross-site bodies (415), path ids with leading whitespace (422), Idempotency-Key,
  no CORS headers by default: tests/contract/test_request_hygiene.py and test_headers.py, per deployment;
* Django's CSRF check for session-cookie POSTs (403): tests/django/test_csrf.py; its ASGI 413 before a
  200 MiB body is read: tests/django/test_asgi_body_limit.py;
* the engine's limits one by one (per owner, per agent, the active runs' byte budget, max_run_duration
  with awaiting time): tests/engine/test_limits.py; the stores' byte budgets:
  tests/engine/test_memory_budget.py, tests/stores/test_redis_retention.py,
  tests/django_store/test_bounds_and_owners.py;
* a resource or session of another owner read through the examples' real servers:
  tests/examples/test_private_mount.py.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pydantic_core
import pytest
from starlette.routing import Mount
from starlette.testclient import TestClient

from acp_adapters import AgentRegistry, Context, Settings
from acp_adapters.asgi import ACPApp
from acp_adapters.core.memory_store import MemoryStore
from acp_adapters.models import Message, MessageAwaitRequest, MessageAwaitResume
from example_agents import BEARER_CHALLENGE, demo_registry
from tests.deployments import django as django_deployments
from tests.deployments.base import ContractClient, HttpResult, HttpxContractClient, Target
from tests.deployments.flask import FlaskContractClient
from tests.helpers import JSON, acp_error, ok_json, output_texts, run_body

MiB = 1024 * 1024
DEFAULTS = Settings()
COMPACT = (",", ":")


def message(*parts: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"content": text} for text in parts]}


def create_body(agent: str, input: list[dict[str, Any]], **extra: Any) -> bytes:
    return json.dumps({"agent_name": agent, "input": input, **extra}, separators=COMPACT).encode()


def post_runs(client: ContractClient, body: bytes, headers: dict[str, str] | None = None) -> HttpResult:
    return client.request("POST", "/runs", content=body, headers={**JSON, **(headers or {})})


def over_cap(result: HttpResult, limit: str, value: int) -> None:
    error = acp_error(result, 422, "invalid_input")
    assert error["data"] == {"limit": limit, limit: value}, error
    assert limit in error["message"], error


# unbounded work from one request ------------------------------------------------------------------
def test_input_past_a_cap_is_refused_before_any_work(target: Target) -> None:
    """slow-echo of 20,000 inputs (560 KB) ran ~20,000 s; a message of many parts, a descriptor of
    ~127,000 history URLs made as many fetches. Each is a 422 naming its limit, with its default."""
    many_inputs = create_body("slow-echo", [message("x")] * 20_000)
    over_cap(post_runs(target.client, many_inputs), "max_input_messages", DEFAULTS.max_input_messages)

    many_parts = create_body("echo", [message(*["x"] * (DEFAULTS.max_input_parts + 1))])
    over_cap(post_runs(target.client, many_parts), "max_input_parts", DEFAULTS.max_input_parts)

    parts_in_all = DEFAULTS.max_input_total_parts // DEFAULTS.max_input_parts + 1
    many_messages = create_body("echo", [message(*["x"] * DEFAULTS.max_input_parts)] * parts_in_all)
    over_cap(post_runs(target.client, many_messages), "max_input_total_parts", DEFAULTS.max_input_total_parts)

    urls = [f"http://192.0.2.1/{n}" for n in range(DEFAULTS.max_history_urls + 1)]
    session = {"id": str(uuid.uuid4()), "history": urls}
    many_urls = create_body("history-echo", [message("x")], session=session)
    over_cap(post_runs(target.client, many_urls), "max_history_urls", DEFAULTS.max_history_urls)

    assert target.client.request("GET", "/ping").status == 200


@dataclass
class Pinged:
    """Pings sent from another thread while a request was served."""

    idle: float  # the slowest ping before the request
    slowest: float  # the slowest of those that overlapped it
    took: float  # how long the request took
    result: HttpResult


def ping_while(client: ContractClient, request: Callable[[], HttpResult]) -> Pinged:
    """Ping from another thread before and while ``request()`` runs (a ping still going when it ends
    counts as during)."""
    pings: list[tuple[float, float]] = []
    stop = threading.Event()

    def pinger() -> None:
        while not stop.is_set():
            began = time.perf_counter()
            assert client.request("GET", "/ping").status == 200
            pings.append((began, time.perf_counter()))
            time.sleep(0.005)

    for _ in range(12):  # every worker of the deployment has answered once (its first answer is slower)
        assert client.request("GET", "/ping").status == 200
    thread = threading.Thread(target=pinger, daemon=True)
    thread.start()
    try:
        while thread.is_alive() and len(pings) < 5:
            time.sleep(0.01)
        began = time.perf_counter()
        result = request()
        ended = time.perf_counter()
        while thread.is_alive() and not any(end > ended for _, end in pings):
            time.sleep(0.005)  # the ping under way when the request ended
    finally:
        stop.set()
        thread.join(30)
    idle = [end - start for start, end in pings if end < began]
    during = [end - start for start, end in pings if end >= began and start < ended]
    assert idle and during, "the pings did not run"
    return Pinged(max(idle), max(during), ended - began, result)


def test_ping_is_answered_while_a_maximum_size_body_is_parsed(target: Target) -> None:
    """A 4 MiB body of 279,606 parts was parsed on the event loop: /ping stalled 3.1 s.

    One message of 255,000 parts (the maximum body; refused by max_input_parts once decoded, so that
    no run adds its own work): pings keep being answered. What remains is the JSON decoding, in a
    thread but in C holding the GIL (~40 ms on an idle machine): the bound is a few times that,
    measured here first, or half the POST's time (decoded and validated on the loop, the slowest ping
    took about all of it, 0.6-3 s), with room for a loaded machine. tests/engine/test_http_requests.py
    holds the core to ~100 ms without the network.
    """
    body = create_body("echo", [message(*["x"] * 255_000)], mode="async")
    assert 4_000_000 < len(body) <= DEFAULTS.max_body_size
    decode = min(timed(pydantic_core.from_json, body) for _ in range(3))
    pinged = ping_while(target.client, lambda: post_runs(target.client, body))
    over_cap(pinged.result, "max_input_parts", DEFAULTS.max_input_parts)
    bound = max(0.5, 5 * decode) + pinged.idle
    stalled = f"/ping took {pinged.slowest * 1000:.0f} ms while the POST took {pinged.took * 1000:.0f} ms"
    assert pinged.slowest < bound or pinged.slowest < pinged.took / 2, (
        f"{stalled} (bound {bound * 1000:.0f} ms)"
    )


def timed(function: Any, *args: Any) -> float:
    began = time.perf_counter()
    function(*args)
    return time.perf_counter() - began


# the examples' defaults ---------------------------------------------------------------------------
LIMITS = (
    "max_body_size",
    "max_input_messages",
    "max_input_parts",
    "max_input_total_parts",
    "max_history_urls",
    "max_active_runs",
    "max_active_runs_per_owner",
    "max_run_duration",
    "max_run_log_bytes",
    "max_retained_bytes",
    "max_history_fetches",
    "history_fetch_timeout",
    "trusted_origins",
    "cors_origins",
    "public_url",
    "debug",
)


def example_settings() -> dict[str, Settings]:
    """The settings of every ACP mount of the three examples, as imported in this process."""
    from acp_adapters.flask import ACPState
    from example_flask.app import app as flask_app
    from example_starlette.app import app as starlette_app

    found: dict[str, Settings] = {}
    for route in starlette_app.routes:
        if isinstance(route, Mount) and isinstance(route.app, ACPApp):
            found[f"starlette {route.path}"] = route.app.service.settings
    for key, state in flask_app.extensions.items():
        if isinstance(state, ACPState):
            found[f"flask {key}"] = state.service.settings
    for index, site in enumerate(django_deployments.example_sites()):
        found[f"django site {index}"] = site.settings
    return found


def test_every_example_mount_runs_with_the_librarys_limits() -> None:
    """No limit of an example is loosened, and no origin trusted, unless the environment says so."""
    settings = example_settings()
    assert len(settings) == 6, sorted(settings)
    for mount, found in settings.items():
        for name in LIMITS:
            assert getattr(found, name) == getattr(DEFAULTS, name), (mount, name)


# memory -------------------------------------------------------------------------------------------
@contextlib.contextmanager
def small_app(
    settings: Settings, registry: AgentRegistry | None = None
) -> Iterator[tuple[TestClient, ACPApp]]:
    app = ACPApp(registry or demo_registry(), settings=settings)
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as client:
        yield client, app


def client_of(test_client: TestClient) -> HttpxContractClient:
    return HttpxContractClient(test_client, "http://testserver")


def test_a_flood_of_parts_is_cut_by_max_run_log_bytes_and_the_server_answers() -> None:
    """Five 75-byte requests to chunks of 100,000 parts each added 300 MiB. A run is cut at
    max_run_log_bytes (lowered here to 1 MiB to be quick), and the store keeps under its budget."""
    settings = Settings(max_run_log_bytes=1 * MiB, max_retained_bytes=4 * MiB)
    with small_app(settings) as (test_client, app):
        client = client_of(test_client)
        runs = []
        for _ in range(5):
            body = create_body("chunks", [message("100000")])
            began = time.monotonic()
            result = post_runs(client, body)
            runs.append(ok_json(result, 200, "Run"))
            assert time.monotonic() - began < 5
            assert client.request("GET", "/ping").status == 200
        for run in runs:
            assert run["status"] == "failed", run
            assert run["error"]["data"] == {"reason": "max_run_log_bytes"}, run["error"]
        store = app.service.store
        assert isinstance(store, MemoryStore)
        assert store.retained_bytes <= settings.max_retained_bytes
        assert output_texts(ok_json(post_runs(client, create_body("echo", [message("hi")])), 200, "Run")) == [
            "hi"
        ]


def test_large_echo_runs_keep_the_store_under_its_budget() -> None:
    """One 4 MiB echo run kept ~7 MiB (23 MiB with a session), and nothing bounded their number."""
    settings = Settings(max_retained_bytes=40 * MiB)
    with small_app(settings) as (test_client, app):
        client = client_of(test_client)
        store = app.service.store
        assert isinstance(store, MemoryStore)
        text = "y" * (3 * MiB + MiB // 2)
        last = None
        for n in range(5):
            extra = {"session_id": str(uuid.uuid4())} if n % 2 else {}
            last = ok_json(post_runs(client, create_body("echo", [message(text)], **extra)), 200, "Run")
            assert last["status"] == "completed", last.get("error")
            assert store.retained_bytes <= settings.max_retained_bytes, (n, store.retained_bytes)
        assert last is not None
        kept = ok_json(client.request("GET", f"/runs/{last['run_id']}"), 200, "Run")
        assert output_texts(kept) == [text]  # the newest run is still there; older ones made room


# pinned work --------------------------------------------------------------------------------------
class Started:
    """Counts the runs an agent was actually started for."""

    def __init__(self) -> None:
        self.count = 0


def awaiting_registry(started: Started) -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent()
    async def holder(input: list[Message], context: Context) -> AsyncGenerator[Any, Any]:
        started.count += 1
        resume = yield MessageAwaitRequest(message=Message(role="agent", parts=[]))
        assert isinstance(resume, MessageAwaitResume)
        yield "resumed"

    return agents


def test_past_max_active_runs_post_runs_is_a_429_before_any_work() -> None:
    """200 awaiting runs created in 0.4 s each held for await_timeout: past max_active_runs (3 here;
    1,000 by default) POST /runs is a 429 with Retry-After, and the agent is not started."""
    started = Started()
    with small_app(Settings(max_active_runs=3), awaiting_registry(started)) as (test_client, _):
        client = client_of(test_client)
        body = create_body("holder", [message("hold")], mode="async")
        held = [ok_json(post_runs(client, body), 202, "Run")["run_id"] for _ in range(3)]
        deadline = time.monotonic() + 10
        while started.count < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        refused = post_runs(client, body)
        error = acp_error(refused, 429, "invalid_input")
        assert error["data"] == {"limit": "max_active_runs", "max_active_runs": 3}, error
        assert int(refused.headers["retry-after"]) >= 1
        assert started.count == 3
        assert client.request("GET", "/ping").status == 200
        ok_json(client.request("POST", f"/runs/{held[0]}/cancel", content=b"{}", headers=JSON), 202, "Run")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the slot comes back once the cancelled run has ended
            answer = post_runs(client, body)
            if answer.status == 202:
                break
            acp_error(answer, 429, "invalid_input")
            time.sleep(0.02)
        assert answer.status == 202, answer


def test_a_slow_run_is_cut_at_max_run_duration() -> None:
    """slow-echo of many inputs ran for hours: it fails with a timeout once max_run_duration is past."""
    with small_app(Settings(max_run_duration=0.5)) as (test_client, _):
        client = client_of(test_client)
        began = time.monotonic()
        run = ok_json(post_runs(client, create_body("slow-echo", [message("x")] * 1000)), 200, "Run")
        assert time.monotonic() - began < 5
        assert run["status"] == "failed" and run["error"]["data"] == {"reason": "max_run_duration"}, run


# another identity's data --------------------------------------------------------------------------
def private_client(target: Target) -> ContractClient:
    """A client of the deployment's ``/acp-private`` mount, next to its ``/acp``."""
    client = target.client
    base_url = target.base_url.removesuffix("/acp") + "/acp-private"
    if isinstance(client, HttpxContractClient):
        return HttpxContractClient(client.client, base_url)
    if isinstance(client, FlaskContractClient):
        return FlaskContractClient(client.app, base_url)
    if isinstance(client, django_deployments.DjangoAsyncContractClient):
        return django_deployments.DjangoAsyncContractClient(client.portal, "/acp-private")
    assert isinstance(client, django_deployments.DjangoContractClient), client
    return django_deployments.DjangoContractClient("/acp-private")


def test_the_private_mount_lets_nobody_in_without_configured_tokens(target: Target) -> None:
    """Without ACP_DEMO_TOKENS, no caller (anonymous, or with any token) gets into /acp-private."""
    private = private_client(target)
    for headers in ({}, {"authorization": "Bearer token-a"}, {"authorization": "Basic dG9rZW4tYQ=="}):
        for method, path, body in (
            ("GET", "/agents", None),
            ("POST", "/runs", run_body("whoami", "?")),
            ("GET", f"/sessions/{uuid.uuid4()}", None),
            ("GET", f"/resources/{uuid.uuid4()}", None),
        ):
            answer = private.request(method, path, json=body, headers=headers)
            acp_error(answer, 401, "invalid_input")
            assert answer.headers.get("www-authenticate") == BEARER_CHALLENGE, answer.headers


TOKENS = {"alice": "token-a", "bob": "token-b"}
TOKENS_ENV = {"ACP_DEMO_TOKENS": ",".join(f"{name}={token}" for name, token in TOKENS.items())}
PUBLIC_URL = "https://acp.example.com/acp-private"


@dataclass
class PrivateMount:
    """``/acp-private`` of an example started with ACP_DEMO_TOKENS (and ACP_PUBLIC_URL)."""

    name: str
    client: ContractClient
    public_url: str | None

    def request(self, who: str | None, method: str, path: str, **options: Any) -> HttpResult:
        headers = dict(options.pop("headers", None) or {})
        if who is not None:
            headers["authorization"] = f"Bearer {TOKENS[who]}"
        return self.client.request(method, path, headers=headers, **options)


@contextlib.contextmanager
def starlette_private() -> Iterator[PrivateMount]:
    from example_starlette.app import create_app

    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**TOKENS_ENV, "ACP_PUBLIC_URL": PUBLIC_URL}.items():
            patch.setenv(name, value)
        app = create_app()
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as client:
        yield PrivateMount(
            "starlette", HttpxContractClient(client, "http://testserver/acp-private"), PUBLIC_URL
        )


@contextlib.contextmanager
def flask_private() -> Iterator[PrivateMount]:
    from acp_adapters.flask import ACPState
    from example_flask.app import create_app

    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**TOKENS_ENV, "ACP_PUBLIC_URL": PUBLIC_URL}.items():
            patch.setenv(name, value)
        app = create_app()
    try:
        yield PrivateMount("flask", FlaskContractClient(app, "http://localhost/acp-private"), PUBLIC_URL)
    finally:
        for state in app.extensions.values():
            if isinstance(state, ACPState):
                state.bridge.close()


@contextlib.contextmanager
def django_private() -> Iterator[PrivateMount]:
    with django_deployments.uvicorn(env=TOKENS_ENV) as target, httpx.Client(timeout=60.0) as http:
        base_url = target.base_url.removesuffix("/acp") + "/acp-private"
        yield PrivateMount("django-uvicorn", HttpxContractClient(http, base_url), None)


PRIVATE_MOUNTS = {"starlette": starlette_private, "flask": flask_private, "django-uvicorn": django_private}


@pytest.fixture(scope="module", params=sorted(PRIVATE_MOUNTS))
def mount(request: pytest.FixtureRequest) -> Iterator[PrivateMount]:
    with PRIVATE_MOUNTS[request.param]() as started:
        yield started


def wait_status(mount: PrivateMount, who: str, run_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        run: dict[str, Any] = ok_json(mount.request(who, "GET", f"/runs/{run_id}"), 200, "Run")
        if run["status"] == status or time.monotonic() > deadline:
            assert run["status"] == status, run
            return run
        time.sleep(0.02)


def test_a_session_cannot_be_taken_over_while_its_first_run_goes_on(mount: PrivateMount) -> None:
    """A second identity running in session S before its first run ended took S over (its owner then
    got 404). Now S is its first run's from the start: bob gets 404 and writes nothing, alice goes on."""
    session_id = str(uuid.uuid4())
    first = mount.request(
        "alice", "POST", "/runs", json=run_body("awaiter", "mine", mode="async", session_id=session_id)
    )
    run_id = ok_json(first, 202, "Run")["run_id"]
    wait_status(mount, "alice", run_id, "awaiting")

    for agent in ("echo", "history-echo"):
        answer = mount.request("bob", "POST", "/runs", json=run_body(agent, "bob's", session_id=session_id))
        acp_error(answer, 404, "not_found")
    acp_error(mount.request("bob", "GET", f"/sessions/{session_id}"), 404, "not_found")
    acp_error(mount.request(None, "GET", f"/sessions/{session_id}"), 401, "invalid_input")

    resume = {"run_id": run_id, "await_resume": {"type": "message", "message": message("go")}, "mode": "sync"}
    done = ok_json(mount.request("alice", "POST", f"/runs/{run_id}", json=resume), 200, "Run")
    assert done["status"] == "completed" and output_texts(done) == ["received: go"], done
    session = ok_json(mount.request("alice", "GET", f"/sessions/{session_id}"), 200, None)
    history = [str(url) for url in session["history"]]
    assert history, session
    if mount.public_url is not None:  # history URLs from public_url, not from the Host header
        assert all(url.startswith(mount.public_url + "/resources/") for url in history), history
    texts = output_texts(
        ok_json(
            mount.request(
                "alice", "POST", "/runs", json=run_body("history-echo", "again", session_id=session_id)
            ),
            200,
            "Run",
        )
    )
    assert "bob's" not in texts and texts[0] == "mine", texts

    # Alice's resources are hers: bob and an anonymous caller get what a missing one gets.
    path = "/resources/" + history[0].rsplit("/resources/", 1)[1]
    assert b"mine" in mount.request("alice", "GET", path).body
    acp_error(mount.request("bob", "GET", path), 404, "not_found")
    acp_error(mount.request(None, "GET", path), 401, "invalid_input")


def test_history_urls_ignore_a_forged_host_when_public_url_is_set(mount: PrivateMount) -> None:
    """History URLs were built from the Host header: a forged one went into the session descriptor."""
    if mount.public_url is None:
        return  # django: ALLOWED_HOSTS refuses a forged Host (tests/django)
    session_id = str(uuid.uuid4())
    body = run_body("echo", "hi", session_id=session_id)
    forged = {"host": "evil.example"}
    ok_json(mount.request("alice", "POST", "/runs", json=body, headers=forged), 200, "Run")
    session = ok_json(mount.request("alice", "GET", f"/sessions/{session_id}", headers=forged), 200, None)
    assert all(str(url).startswith(mount.public_url) for url in session["history"]), session


# cross-site ---------------------------------------------------------------------------------------
def test_a_string_of_cors_origins_is_refused_and_origins_match_exactly() -> None:
    """cors_origins="https://app.example.com" matched by substring: https://app.example.co and "h" passed."""
    with pytest.raises(ValueError, match="cors_origins"):
        Settings(cors_origins="https://app.example.com")  # type: ignore[arg-type]  # the mistake under test
    settings = Settings(cors_origins=("https://app.example.com",))
    with small_app(settings) as (test_client, _):
        client = client_of(test_client)
        for origin in (
            "https://app.example.co",
            "h",
            "https://app.example.com.evil.example",
            "http://app.example.com",
        ):
            answer = client.request("GET", "/agents", headers={"origin": origin})
            assert "access-control-allow-origin" not in answer.headers, (origin, answer.headers)
        answer = client.request("GET", "/agents", headers={"origin": "https://app.example.com"})
        assert answer.headers["access-control-allow-origin"] == "https://app.example.com"
