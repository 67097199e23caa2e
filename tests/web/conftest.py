"""Fixtures of the web client tests: Debian's chromium driven by Playwright against the session's stack.

- ``browser`` (session): /usr/bin/chromium, headless (``make test`` installs it with
  deploy/ensure-chromium.sh; Playwright never downloads a browser here).
- ``people``: ``await people.sign_in("Ann", phone=True)`` opens a fresh browser context on the
  stack's web client and signs a fresh user in through the dev login form; contexts close after
  the test, which fails if a page threw an uncaught error.
- ``shots``: where screenshots go: ``$BOOCHAT_WEB_SCREENSHOTS/<test>`` or the test's tmp_path.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright, expect
from support.stack import Stack

from web.helpers import People

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000  # the stack runs on two shared cores: a live update may take a few seconds

expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="session")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: deploy/ensure-chromium.sh installs Debian's chromium (make test runs it)")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def people(browser: Browser, stack: Stack) -> AsyncIterator[People]:
    crowd = People(browser, stack.http_url)
    yield crowd
    for person in crowd.opened:
        await person.context.close()
    errors = {person.name: person.errors for person in crowd.opened if person.errors}
    assert not errors, f"uncaught errors in the pages: {errors}"


@pytest.fixture
def shots(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    root = os.environ.get("BOOCHAT_WEB_SCREENSHOTS")
    folder = Path(root) / request.node.name if root else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
