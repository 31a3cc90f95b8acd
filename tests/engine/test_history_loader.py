"""The session resource loader: this server's own resources, scoped to the run's owner."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from acp_adapters import AgentRegistry, Context, Settings
from acp_adapters.core.memory_store import MemoryStore
from acp_adapters.core.resources import ResourceLoader, ResourceUnavailable
from acp_adapters.models import Message
from tests.helpers import run_body

pytestmark = pytest.mark.anyio

MESSAGE = b'{"role":"user","parts":[{"content_type":"text/plain","content":"kept"}]}'


def loader(
    store: MemoryStore, owner: str | None, base_url: str = "http://test/acp", **settings: Any
) -> ResourceLoader:
    return ResourceLoader(store, Settings(**settings), base_url, None, owner=owner)


async def stored(store: MemoryStore, owner: str | None, base_url: str = "http://test/acp") -> str:
    return await loader(store, owner, base_url).store(MESSAGE)


async def refusal(load: ResourceLoader, url: str) -> str:
    with pytest.raises(ResourceUnavailable) as caught:
        await load.load(url)
    return caught.value.error.model_dump_json()


async def test_a_resource_is_loaded_by_its_owner_only_and_others_get_not_found() -> None:
    store = MemoryStore()
    alices = await stored(store, "alice")
    missing = f"http://test/acp/resources/{uuid.uuid4()}"
    assert await loader(store, "alice").load(alices) == MESSAGE
    for who in ("bob", None):
        # another identity's resource reads exactly like a missing one
        assert await refusal(loader(store, who), alices) == await refusal(loader(store, who), missing)
    assert await refusal(loader(store, "bob"), alices) == (
        '{"code":"not_found","message":"could not load a history message","data":null}'
    )


async def test_an_ownerless_resource_is_loaded_by_anyone() -> None:
    store = MemoryStore()
    anyones = await stored(store, None)
    for who in ("alice", None):
        assert await loader(store, who).load(anyones) == MESSAGE


async def test_a_run_stores_its_resources_under_its_owner() -> None:
    store = MemoryStore()
    url = await loader(store, "alice").store(b"state")
    record = await store.get_resource(uuid.UUID(url.rsplit("/", 1)[1]))
    assert record is not None and record.owner == "alice"


@pytest.mark.parametrize(
    "spelling",
    [
        "HTTP://TEST/acp/resources/{id}",
        "http://test:80/acp/resources/{id}",
        "http://test/acp/./resources/{id}",
        "http://test/other/../acp/resources/{id}",
        "http://test/acp/resources/{ID}",
    ],
)
async def test_own_resources_are_recognised_in_any_spelling_of_the_base_url(spelling: str) -> None:
    store = MemoryStore()
    url = await stored(store, "alice")
    resource_id = url.rsplit("/", 1)[1]
    # no HTTP client and no trusted origin: only the store can answer
    assert (
        await loader(store, "alice").load(spelling.format(id=resource_id, ID=resource_id.upper())) == MESSAGE
    )
    assert await refusal(loader(store, "bob"), spelling.format(id=resource_id, ID=resource_id.upper()))


async def test_the_public_url_is_the_base_of_own_resources() -> None:
    store = MemoryStore()
    base = "https://api.example.com/acp"
    url = await stored(store, "alice", base)
    assert url.startswith(f"{base}/resources/")
    resource_id = url.rsplit("/", 1)[1]
    own = loader(store, "alice", base)
    assert await own.load(f"https://API.example.com:443/acp/resources/{resource_id}") == MESSAGE
    # the same id under another base is not this server's, and no origin is trusted
    for other in (
        f"http://api.example.com/acp/resources/{resource_id}",
        f"https://api.example.com/acp2/resources/{resource_id}",
        f"https://api.example.com:8443/acp/resources/{resource_id}",
        f"http://test/acp/resources/{resource_id}",
    ):
        await refusal(own, other)


@pytest.mark.parametrize(
    "suffix",
    ["{{{id}}}", "urn:uuid:{id}", "{hex}", "{id}?x=1", "{id}#f", "{id}/", "", "../runs/{id}", " {id}"],
)
async def test_only_a_canonical_id_names_an_own_resource(suffix: str) -> None:
    store = MemoryStore()
    url = await stored(store, None)
    resource_id = uuid.UUID(url.rsplit("/", 1)[1])
    bad = "http://test/acp/resources/" + suffix.format(id=resource_id, hex=resource_id.hex)
    await refusal(loader(store, None), bad)


async def test_own_resources_do_not_count_as_remote_fetches() -> None:
    store = MemoryStore()
    urls = [await stored(store, None) for _ in range(3)]
    load = loader(store, None, max_history_fetches=1)
    assert [await load.load(url) for url in urls] == [MESSAGE] * 3


def history_registry() -> AgentRegistry:
    agents = AgentRegistry()

    @agents.agent(name="history-echo")
    async def history_echo(input: list[Message], context: Context) -> AsyncIterator[Message]:
        async for message in context.session.load_history():
            yield message
        for message in input:
            yield message

    return agents


def texts(run: dict[str, Any]) -> list[str]:
    return [message["parts"][0]["content"] for message in run["output"]]


async def test_another_identity_cannot_load_a_session_s_history_into_its_own(make_call: Any) -> None:
    call = make_call(history_registry())
    alices_session = str(uuid.uuid4())
    status, _ = await call.json(
        "POST", "/runs", {**run_body("history-echo", "secret"), "session_id": alices_session}, owner="alice"
    )
    assert status == 200
    status, session = await call.json("GET", f"/sessions/{alices_session}", owner="alice")
    assert status == 200 and len(session["history"]) == 2
    for who in ("bob", None):
        descriptor = {"id": str(uuid.uuid4()), "history": session["history"]}
        status, run = await call.json(
            "POST", "/runs", {**run_body("history-echo", "mine"), "session": descriptor}, owner=who
        )
        assert status == 200 and texts(run) == ["mine"], run
    descriptor = {"id": str(uuid.uuid4()), "history": session["history"]}
    status, run = await call.json(
        "POST", "/runs", {**run_body("history-echo", "again"), "session": descriptor}, owner="alice"
    )
    assert status == 200 and texts(run) == ["secret", "secret", "again"]
