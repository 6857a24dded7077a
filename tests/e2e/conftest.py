"""Browser tests: the real server (`manage.py serve`) on the test database, driven by Chromium.

Tests that use `live_server_url` must also request `transactional_db`, so that what the
server wrote is flushed afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.live_server import ARTIFACTS

SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


def shot(page, name: str) -> Path:
    """Save a full-page screenshot as test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = next((p for p in CHROMIUM_PATHS if os.path.exists(p)), None)
    if path is None:
        reason = f"Chromium not found at {' or '.join(CHROMIUM_PATHS)}"
        if os.environ.get("ORRERY_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason}, and ORRERY_REQUIRE_BROWSER=1.")
        pytest.skip(f"{reason} (apt-get install chromium).")
    return path


@pytest.fixture
def browser_page(chromium_path, live_server_url, transactional_db):
    """A page in a fresh Chromium (no cookies), closed after the test.

    Playwright's sync API runs an asyncio loop in this thread, and Django refuses database
    calls while one runs: so the browser starts after the test database is ready and stops
    before pytest-django flushes it (hence the dependency on transactional_db).
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser.new_context().new_page()
        browser.close()
