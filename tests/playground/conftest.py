"""A Chromium for the browser tests: Debian's ``chromium`` driven by Playwright's Python API.

Playwright's own browser download is not used (``.ci/run`` installs the ``chromium`` package and
Playwright comes with the ``test`` extra). One browser for the whole session, a fresh context (cookies,
storage) per test. Without Chromium the tests skip, unless ``ACP_REQUIRE_SERVICES`` is set (as in CI),
when they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import NoReturn

import pytest
from playwright.sync_api import Browser, sync_playwright


def _missing(reason: str) -> NoReturn:
    if os.environ.get("ACP_REQUIRE_SERVICES"):
        pytest.fail(f"{reason}, and ACP_REQUIRE_SERVICES is set", pytrace=False)
    pytest.skip(f"{reason}; set ACP_REQUIRE_SERVICES=1 to make this a failure")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium, headless; ``--no-sandbox`` because CI runs as root.

    Module-scoped, not session-scoped: Playwright's sync API keeps its event loop marked as running in
    the main thread while it is started, and every asyncio test after it would then fail ("Cannot run
    the event loop while another loop is running")."""
    executable = shutil.which("chromium")
    if executable is None:
        _missing("the browser tests need Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()
