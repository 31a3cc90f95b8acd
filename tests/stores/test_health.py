"""``GET {prefix}/health`` on the Redis store: 503 (an ACP error) while Redis is unreachable, 200 when it
answers, and back to 200 once it returns, without a restart of the app. ``/ping`` stays 200 throughout:
it says the process is alive, ``/health`` that it can serve runs."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from acp_adapters.asgi import ACPApp
from acp_adapters.stores.redis import RedisStore
from example_agents import demo_registry
from tests.deployments.base import free_port
from tests.helpers import run_body
from tests.stores.backends import REDIS_URL, RedisBackend
from tests.stores.redis_server import RedisServer

pytestmark = pytest.mark.redis


def client_of(store: RedisStore) -> TestClient:
    return TestClient(ACPApp(demo_registry(), store=store))


def unreachable(client: TestClient) -> None:
    answer = client.get("/health")
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == {"code": "server_error", "message": "the store is unreachable"}


@pytest.fixture
def closed_port() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


def test_health_is_503_while_redis_is_unreachable_and_ping_stays_200(closed_port: str) -> None:
    store = RedisStore(closed_port, timeout=2.0, connect_timeout=0.5, retries=0)
    with client_of(store) as client:
        started = time.monotonic()
        unreachable(client)
        assert time.monotonic() - started < 3  # a refused connection fails at once, not at the deadline
        assert client.get("/ping").status_code == 200
        # Every run would fail the same way: /health says so before a client finds out.
        answer = client.post("/runs", json=run_body("echo"))
        assert answer.status_code == 503


def test_health_is_200_on_the_real_redis(prefix: str) -> None:
    RedisBackend().check()
    with client_of(RedisStore(REDIS_URL, prefix=prefix)) as client:
        answer = client.get("/health")
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}
        assert client.head("/health").status_code == 200


@pytest.mark.slow
def test_health_follows_redis_going_away_and_coming_back(server: RedisServer) -> None:
    store = RedisStore(server.url, timeout=2.0, connect_timeout=0.5)
    with client_of(store) as client:
        assert client.get("/health").status_code == 200
        server.shutdown()
        unreachable(client)
        server.start()
        deadline = time.monotonic() + 10
        while (status := client.get("/health").status_code) != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status == 200
        assert client.post("/runs", json=run_body("echo")).json()["status"] == "completed"
