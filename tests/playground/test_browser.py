"""The playground driven in a real Chromium, on each example served by a real server with
``ACP_PLAYGROUND=1``: the agents and a manifest; echo in every mode, with a file part; a ``chunks``
stream rendered part by part, in order, while the run is in progress; ``awaiter`` resumed from its form
in every mode; ``slow-echo`` cancelled; a session continued and its history read; a run's raw events;
the bearer-token mount, where the page sees only its owner's runs.

Each test fails on any script error or Content-Security-Policy violation in the page.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from playwright.sync_api import APIResponse, Browser, ConsoleMessage, Locator, Page, Route, expect

from tests.deployments import django, flask, starlette
from tests.deployments.base import Target
from tests.helpers import DEMO_AGENTS, PNG_1X1

pytestmark = pytest.mark.slow

ENV = {"ACP_PLAYGROUND": "1", "ACP_DEMO_TOKENS": "alice=token-a,bob=token-b"}
Start = Callable[..., AbstractContextManager[Target]]
EXAMPLES: dict[str, tuple[Start, Any]] = {
    "starlette-uvicorn": (starlette.uvicorn, pytest.mark.starlette),
    "flask-gunicorn": (flask.gunicorn, pytest.mark.flask),
    "django-gunicorn": (django.gunicorn, pytest.mark.django),
    "django-uvicorn": (django.uvicorn, pytest.mark.django),
}
#: How long a flow may take in the page (a busy CI machine).
TIMEOUT = 20_000

#: Records, in the page, every streamed text part as it is added to a run's output, with the run's
#: status at that moment.
RECORD_PARTS = """() => {
  window.seenParts = [];
  new MutationObserver((changes) => {
    for (const change of changes) for (const node of change.addedNodes) {
      if (node.nodeType === 1 && node.matches(".output .part-text")) {
        const status = node.closest(".run").querySelector(".status").dataset.status;
        window.seenParts.push([node.textContent, status]);
      }
    }
  }).observe(document.getElementById("runs"), { childList: true, subtree: true });
}"""

#: Records, in the page, every status a run's card shows, in order.
RECORD_STATUSES = """() => {
  window.seenStatuses = [];
  new MutationObserver((changes) => {
    for (const change of changes) {
      const status = change.target.dataset.status;
      const isNew = status !== window.seenStatuses.at(-1);
      if (change.target.matches(".status") && isNew) window.seenStatuses.push(status);
    }
  }).observe(document.getElementById("runs"), {
    attributes: true, attributeFilter: ["data-status"], subtree: true,
  });
}"""


@pytest.fixture(
    scope="module",
    params=[pytest.param(name, marks=mark) for name, (_, mark) in EXAMPLES.items()],
)
def server(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The example, under a real server, with the playground on."""
    start, _ = EXAMPLES[request.param]
    with start(env=ENV) as target:
        yield target


class Playground:
    """The page, with the steps a person takes in it."""

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.url = url
        self.problems: list[str] = []
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on("console", self._console)
        page.set_default_timeout(TIMEOUT)
        expect.set_options(timeout=TIMEOUT)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":  # a CSP violation is one
            self.problems.append(f"console: {message.text}")

    def open(self, agent: str, mount: str = "/acp") -> None:
        self.page.goto(f"{self.url}{mount}/playground#{agent}")
        expect(self.page.locator("#manifest-name")).to_have_text(agent)

    def choose(self, agent: str) -> None:
        self.page.locator(f'#agent-list input[value="{agent}"]').check()
        expect(self.page.locator("#manifest-name")).to_have_text(agent)

    def send(self, text: str, mode: str = "stream") -> Locator:
        """Write ``text``, pick ``mode``, run; the new run's card."""
        self.page.get_by_label("Message text").first.fill(text)
        self.page.get_by_role("group", name="Mode").get_by_role("radio", name=re.compile(rf"^{mode}")).check()
        count = self.runs().count()
        self.page.get_by_role("button", name="Run", exact=True).click()
        expect(self.runs()).to_have_count(count + 1)
        return self.runs().first

    def runs(self) -> Locator:
        return self.page.locator("#runs > li")

    @staticmethod
    def status_of(card: Locator, status: str) -> None:
        expect(card.locator(".status")).to_have_attribute("data-status", status)

    @staticmethod
    def output_of(card: Locator) -> Locator:
        return card.locator(".output")


@pytest.fixture
def playground(browser: Browser, server: Target) -> Iterator[Playground]:
    context = browser.new_context()
    try:
        page = context.new_page()
        ui = Playground(page, server.base_url.removesuffix("/acp"))
        yield ui
        assert ui.problems == []
    finally:
        context.close()


def test_the_agents_and_a_manifest_are_listed(playground: Playground) -> None:
    playground.open("echo")
    page = playground.page
    expect(page.locator("#agent-list").get_by_role("radio")).to_have_count(len(DEMO_AGENTS))
    playground.choose("mime-types")
    expect(page.locator("#manifest-facts")).to_contain_text("text/html, application/json")
    expect(page.locator("#manifest-description")).to_have_text("Yields parts of several content types.")
    assert page.url.endswith("#mime-types")  # the choice survives a reload


def test_echo_in_every_mode_with_a_file_part(playground: Playground) -> None:
    playground.open("echo")
    for mode in ("sync", "async", "stream"):
        card = playground.send(f"hello in {mode}", mode)
        playground.status_of(card, "completed")
        expect(playground.output_of(card)).to_have_text(re.compile(f"hello in {mode}"))
    page = playground.page
    page.locator("#add-file").set_input_files(
        {"name": "dot.png", "mimeType": "image/png", "buffer": base64.b64decode(PNG_1X1)}
    )
    expect(page.locator(".file-part")).to_contain_text("dot.png")
    card = playground.send("and a picture")
    playground.status_of(card, "completed")
    image = playground.output_of(card).get_by_role("img", name="dot.png")
    expect(image).to_have_attribute("src", f"data:image/png;base64,{PNG_1X1}")
    expect(playground.output_of(card)).to_contain_text("artifact dot.png")  # a named part


def test_a_chunks_stream_is_rendered_part_by_part_in_order(playground: Playground) -> None:
    playground.open("chunks")
    playground.page.evaluate(RECORD_PARTS)
    card = playground.send("40", "stream")
    playground.status_of(card, "completed")
    expected = "".join(f"{i} " for i in range(40))
    expect(playground.output_of(card)).to_have_text(re.compile(re.escape(expected.strip())))
    seen = playground.page.evaluate("window.seenParts")
    assert [text for text, _ in seen] == [f"{i} " for i in range(40)]
    assert {status for _, status in seen} == {"in-progress"}  # live, before the run completed
    log = card.locator(".stream-log li")
    types = [item.get_attribute("data-type") for item in log.all()]
    assert types[0] == "run.created" and types[-1] == "run.completed"
    assert types.count("message.part") == 40


def test_awaiter_is_resumed_from_its_form_in_every_mode(playground: Playground) -> None:
    playground.open("awaiter")
    for mode in ("stream", "sync", "async"):
        card = playground.send("ask me", mode)
        playground.status_of(card, "awaiting")
        answer = card.get_by_label("Your answer")
        expect(answer).to_be_focused()  # the next thing to do
        answer.fill(f"yes via {mode}")
        card.get_by_role("button", name="Resume").click()
        playground.status_of(card, "completed")
        expect(playground.output_of(card)).to_contain_text(f"received: yes via {mode}")
        expect(card.locator(".await")).to_be_hidden()


@pytest.mark.parametrize("mode", ["stream", "async"])
def test_slow_echo_is_cancelled(playground: Playground, mode: str) -> None:
    playground.open("slow-echo")
    card = playground.send("too slow", mode)
    cancel = card.get_by_role("button", name="Cancel")
    expect(cancel).to_be_enabled()
    cancel.click()
    playground.status_of(card, "cancelled")
    expect(cancel).to_be_disabled()
    expect(playground.output_of(card)).not_to_contain_text("too slow")


def test_a_late_cancel_answer_does_not_undo_the_streamed_end(playground: Playground) -> None:
    """The cancel request's own answer (``cancelling``) reaching the page after the stream's
    ``run.cancelled`` leaves the card cancelled (CI once saw it stuck at ``cancelling``)."""
    page = playground.page
    held: list[tuple[Route, APIResponse]] = []

    def hold_the_answer(route: Route) -> None:
        held.append((route, route.fetch()))  # the server cancels now; the page hears of it later

    page.route("**/runs/*/cancel", hold_the_answer)
    playground.open("slow-echo")
    page.evaluate(RECORD_STATUSES)
    card = playground.send("too slow", "stream")
    card.get_by_role("button", name="Cancel").click()
    playground.status_of(card, "cancelled")
    # The handler has the answer once route.fetch() returns, which can be after the stream's end
    # reached the page; Playwright runs it only while this thread waits in a Playwright call.
    for _ in range(200):
        if held:
            break
        page.wait_for_timeout(50)
    [(route, answer)] = held
    assert answer.json()["status"] == "cancelling"
    route.fulfill(response=answer)
    page.wait_for_timeout(500)  # the page takes the late answer in
    playground.status_of(card, "cancelled")
    statuses: list[str] = page.evaluate("() => window.seenStatuses")
    assert statuses[statuses.index("cancelled") :] == ["cancelled"]


def test_a_session_is_continued_and_its_history_read(playground: Playground) -> None:
    page = playground.page
    playground.open("echo")
    page.get_by_label("Keep a session").check()
    first = playground.send("first words", "sync")
    playground.status_of(first, "completed")
    session_id = page.get_by_role("textbox", name="Session id").input_value()
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", session_id)

    playground.choose("history-echo")
    second = playground.send("second words", "stream")
    playground.status_of(second, "completed")
    # history-echo yields the session's history (the first run's input and output), then its input
    texts = re.compile("first words.*first words.*second words", re.S)
    expect(playground.output_of(second)).to_have_text(texts)

    page.get_by_role("button", name="Show history").click()
    history = page.locator("#history-list > li")
    # the first run's input and output, the second's input and its three output messages
    expect(history).to_have_count(6)
    expect(history.nth(0)).to_contain_text("You")
    expect(history.nth(0)).to_contain_text("first words")
    expect(history.nth(2)).to_contain_text("second words")
    expect(history.nth(5)).to_contain_text("second words")

    page.get_by_role("textbox", name="Session id").fill("")
    first.get_by_role("button", name="Continue this session").click()
    assert page.get_by_role("textbox", name="Session id").input_value() == session_id
    third = playground.send("third words", "async")
    playground.status_of(third, "completed")
    expect(playground.output_of(third)).to_contain_text("second words")


def test_a_runs_raw_events_are_shown_on_demand(playground: Playground) -> None:
    playground.open("tool-trajectory")
    card = playground.send("look it up", "sync")
    playground.status_of(card, "completed")
    output = playground.output_of(card)
    expect(output.locator(".trajectory")).to_contain_text("search")
    expect(output.locator(".citation").get_by_role("link", name="Example")).to_have_attribute(
        "href", "https://example.org/"
    )
    events = card.locator(".events")
    expect(events).to_be_hidden()
    card.get_by_role("button", name="Raw events").click()
    expect(events).to_be_visible()
    lines = events.inner_text().splitlines()
    assert '"type":"run.created"' in lines[0] and '"type":"run.completed"' in lines[-1]


def test_the_token_mount_shows_a_401_until_a_token_is_given_and_scopes_runs(
    playground: Playground, server: Target
) -> None:
    page = playground.page
    if server.name.startswith("django"):
        # The Django example's guard decides for the whole mount, the page included: a logged-in user
        # (whose session cookie the page's requests carry) or a token, which a browser's navigation
        # does not send.
        answer = httpx.get(f"{playground.url}/acp-private/playground", timeout=10)
        assert answer.status_code == 401
        return
    page.goto(f"{playground.url}/acp-private/playground")
    expect(page.locator("#agents-status")).to_contain_text("HTTP 401")
    playground.problems.clear()  # the browser logs the 401 it was given
    token = page.get_by_label("Bearer token")
    expect(token).to_be_focused()  # the page opens its Authorization section
    token.fill("token-a")
    page.get_by_role("button", name="Use").click()
    playground.choose("whoami")
    card = playground.send("who?", "sync")
    playground.status_of(card, "completed")
    expect(playground.output_of(card)).to_have_text(re.compile("you are alice"))
    run_id = card.get_attribute("data-run-id")
    token.fill("token-b")  # another owner: the run is not found
    card.get_by_role("button", name="Raw events").click()
    expect(card.locator(".error")).to_contain_text(f"HTTP 404 · not_found: run {run_id} not found")
    playground.problems.clear()
