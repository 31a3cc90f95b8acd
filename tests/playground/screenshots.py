"""Takes the playground's screenshots in docs/images/ (docs/playground.md shows them).

Run from the repository root: ``python -m tests.playground.screenshots`` (Debian's ``chromium`` and the
``test`` extra). It starts the Starlette example with ``ACP_PLAYGROUND=1`` on a free port, drives the
page as a person would and saves a wide and a phone-sized view.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

from tests.deployments import starlette

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def _newest_run_is(page: Page, status: str) -> None:
    expect(page.locator("#runs > li").first.locator(".status")).to_have_attribute("data-status", status)


def _run(page: Page, agent: str, text: str, mode: str, status: str = "completed") -> None:
    page.locator(f'#agent-list input[value="{agent}"]').check()
    expect(page.locator("#manifest-name")).to_have_text(agent)
    page.get_by_label("Message text").first.fill(text)
    page.get_by_role("group", name="Mode").get_by_role("radio", name=re.compile(rf"^{mode}")).check()
    page.get_by_role("button", name="Run", exact=True).click()
    _newest_run_is(page, status)


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    executable = shutil.which("chromium")
    if executable is None:
        raise SystemExit("needs Debian's chromium: apt-get install chromium")
    with starlette.uvicorn(env={"ACP_PLAYGROUND": "1"}) as target, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        wide = browser.new_page(viewport={"width": 1280, "height": 900})
        wide.goto(f"{target.base_url}/playground#artifact-producer")
        expect(wide.locator("#manifest-name")).to_have_text("artifact-producer")
        _run(wide, "awaiter", "Book a table for two", "stream", "awaiting")
        wide.locator("#runs > li").first.get_by_label("Your answer").fill("Friday, 8 pm")
        _run(wide, "tool-trajectory", "weather in Lyon", "sync")
        _run(wide, "artifact-producer", "a report, please", "stream")
        wide.get_by_role("textbox", name="Message text").first.focus()
        wide.screenshot(path=IMAGES / "playground.png", full_page=True)

        phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
        phone.goto(f"{target.base_url}/playground#chunks")
        expect(phone.locator("#manifest-name")).to_have_text("chunks")
        _run(phone, "chunks", "12", "stream")
        phone.locator("#runs").scroll_into_view_if_needed()
        phone.screenshot(path=IMAGES / "playground-phone.png")
        browser.close()
    print(f"saved {IMAGES / 'playground.png'} and {IMAGES / 'playground-phone.png'}")


if __name__ == "__main__":
    main()
