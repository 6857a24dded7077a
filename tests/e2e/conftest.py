"""Browser tests: the real server (`manage.py serve`) on the test database, driven by Chromium.

Tests that use `live_server_url` must also request `transactional_db`, so that what the
server wrote is flushed afterwards.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
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
START_TIMEOUT = 30


def shot(page, name: str) -> Path:
    """Save a full-page screenshot as test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url(db: dict) -> str:
    """A DATABASE_URL for the test database; the embedded one is on a unix socket."""
    user = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        user += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or ""
    if not host or host.startswith("/"):
        return f"postgresql://{user}@/{db['NAME']}?host={quote(host, safe='')}"
    return f"postgresql://{user}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError:
        return True  # any status will do: the server is up
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def live_server_url(django_db_setup, django_db_blocker):
    from django.db import connection

    with django_db_blocker.unblock():
        url = _database_url(connection.settings_dict)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": "e2e-test-secret-key-not-for-production",
        "SECURE_COOKIES": "false",
        "DEBUG": "false",
        "SITE_URL": base,  # invitation links point at this server
    }
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            # --no-worker: its heartbeats would land in the test database while other
            # tests assert on heartbeats; the flows driven here need no background job.
            [sys.executable, "manage.py", "serve", "--no-migrate", "--no-worker"]
            + ["--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(f"{base}/api/health"):
            if proc.poll() is not None or time.monotonic() > deadline:
                what = (
                    f"exited with code {proc.returncode}"
                    if proc.poll() is not None
                    else f"did not answer /api/health within {START_TIMEOUT}s"
                )
                pytest.fail(f"The server {what}. Its output:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
