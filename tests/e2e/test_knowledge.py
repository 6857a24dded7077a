"""A knowledge base in a real browser: create it, drop two files on the upload page, watch
them reach Completed on the live list (indexed by a real worker process), open the chunks,
and run a hit test that finds the uploaded text."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from playwright.sync_api import expect

from tests.e2e.conftest import shot
from tests.live_server import ARTIFACTS, ROOT, _database_url

pytestmark = pytest.mark.browser

PASSWORD = "orbit-Correct-Horse-42"
GUIDE = (
    "Orrery keeps your documents in knowledge bases.\n\n"
    "The lighthouse keeper trims the lamp wick every evening at dusk.\n\n"
    "Tides at the harbour turn twice a day; the ferry waits for high water."
)
FAQ = "# FAQ\n\nHow do I reset my password? Use the link on the sign-in page.\n"


@pytest.fixture
def indexing_worker(live_server_url, transactional_db):
    """`manage.py indexing_worker` in its own process on the test database: embedded, it
    finds queued documents through the reconciler, as a second machine would."""
    from apps.core.crypto import current_master_keys

    env = {
        **os.environ,
        "DATABASE_URL": _database_url(connection.settings_dict),
        "SECRET_KEY": "e2e-test-secret-key-not-for-production",
        "ORRERY_MASTER_KEYS": ",".join(current_master_keys()),
        # The server's wake-ups go to its own in-memory broker: this worker finds the
        # queued documents by reconciling every second.
        "ORRERY_INDEXING_RECONCILE_SECONDS": "1",
        "ORRERY_INDEXING_WAKE_AFTER_SECONDS": "1",
    }
    log = (ARTIFACTS / "indexing-worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "indexing_worker", "--threads", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def test_create_upload_index_and_hit_test(
    browser_page, live_server_url, transactional_db, indexing_worker, tmp_path: Path
):
    page, base = browser_page, live_server_url
    page.goto(f"{base}/signup/")
    page.get_by_label("Your name").fill("Ada Lovelace")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{base}/apps/")

    # Knowledge: empty at first, then a new economy knowledge base (no model needed).
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Knowledge").click()
    expect(page.get_by_role("heading", name="No knowledge bases yet")).to_be_visible()
    page.get_by_role("link", name="Create knowledge base").first.click()
    form = page.get_by_test_id("dataset-create-form")
    form.get_by_label("Name").fill("Harbour guide")
    form.get_by_label("Description").fill("What the harbour staff know")
    form.get_by_label("Economy (full text only)").check()
    form.get_by_role("button", name="Create").click()
    expect(page.get_by_test_id("dataset-name")).to_have_text("Harbour guide")
    expect(page.get_by_role("heading", name="No documents yet")).to_be_visible()

    # Upload two files at once, dropped on the drop zone.
    guide, faq = tmp_path / "guide.txt", tmp_path / "faq.md"
    guide.write_text(GUIDE)
    faq.write_text(FAQ)
    page.get_by_role("link", name="Add documents").first.click()
    page.get_by_test_id("file-input").set_input_files([str(guide), str(faq)])
    expect(page.locator("[data-dropzone-files] li")).to_have_count(2)
    page.get_by_role("button", name="Preview chunks").click()
    expect(page.get_by_test_id("preview")).to_contain_text("lighthouse keeper")
    shot(page, "knowledge-add-documents")
    page.get_by_role("button", name="Save and index").click()
    expect(page.get_by_text("2 documents added; indexing has started.")).to_be_visible()

    # The list polls itself until both are Completed.
    rows = page.get_by_test_id("document-row")
    expect(rows).to_have_count(2)
    for status in page.get_by_test_id("document-status").all():
        expect(status).to_have_text("Completed", timeout=60_000)
    shot(page, "knowledge-documents")

    # Disable the FAQ from its row's menu: the table is swapped in place (HTMX).
    faq_row = rows.filter(has_text="faq.md")
    faq_row.get_by_text("Actions").click()
    shot(page, "knowledge-document-actions")
    faq_row.get_by_role("button", name="Disable").click()
    expect(rows.filter(has_text="faq.md")).to_contain_text("Disabled")

    # The chunks of the guide.
    page.get_by_role("link", name="guide.txt").click()
    expect(page.get_by_test_id("chunks")).to_contain_text("lighthouse keeper trims the lamp")

    # Hit testing finds the sentence about the lighthouse, with a score and its source.
    page.get_by_role("navigation", name="Knowledge base").get_by_role(
        "link", name="Hit testing"
    ).click()
    page.get_by_label("Query").fill("lighthouse lamp")
    page.get_by_role("button", name="Test").click()
    first = page.get_by_test_id("hit").first
    expect(first).to_contain_text("lighthouse keeper")
    expect(first).to_contain_text("guide.txt")
    expect(page.get_by_test_id("hit-score").first).to_have_text(re.compile(r"\d\.\d{3}"))
    expect(page.get_by_test_id("query-history")).to_contain_text("lighthouse lamp", timeout=5000)
    shot(page, "knowledge-hit-testing")

    # At phone width the list and the hit test stay readable (looked at by hand).
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "knowledge-hit-testing-phone")
    page.get_by_role("navigation", name="Knowledge base").get_by_role(
        "link", name="Documents"
    ).click()
    expect(page.get_by_test_id("document-row")).to_have_count(2)
    shot(page, "knowledge-documents-phone")
