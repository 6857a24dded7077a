"""An owner sets up OpenAI (a fake one on loopback) from Settings → Model providers and
picks the default reasoning model: all in a real browser, at desktop and phone width."""

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import shot
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.browser

PASSWORD = "orbit-Correct-Horse-42"
KEY = "sk-e2e-fake-key-0042"
PHONE = {"width": 390, "height": 844}


def _shot(page, name: str) -> None:
    page.evaluate("window.scrollTo(0, 0)")  # so the sticky header is drawn at the top
    shot(page, name)


def _sign_up(page, base: str) -> None:
    page.goto(f"{base}/signup/")
    page.get_by_label("Your name").fill("Ada Lovelace")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{base}/apps/")


def test_set_up_openai_and_pick_the_default_model(browser_page, live_server_url, transactional_db):
    page, base = browser_page, live_server_url
    with FakeOpenAI(api_key=KEY) as fake:
        _sign_up(page, base)

        # Settings → Model providers: the whole catalog, nothing set up yet.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
        settings_nav = page.get_by_role("navigation", name="Settings")
        settings_nav.get_by_role("link", name="Model providers").click()
        expect(page).to_have_url(f"{base}/settings/providers/")
        openai = page.get_by_test_id("provider-openai")
        expect(openai).to_contain_text("Not set up")
        expect(page.get_by_label("Reasoning")).to_be_disabled()  # no usable model yet
        assert page.locator("[data-testid^=provider-]").count() >= 30
        _shot(page, "providers-list")

        # OpenAI: the key and the fake's address; saving checks them for real.
        openai.click()
        expect(page).to_have_url(f"{base}/settings/providers/openai/")
        form = page.get_by_test_id("credentials-form")
        form.get_by_label("API Key").fill(KEY)
        form.get_by_label("API Base URL").fill(fake.url)
        form.get_by_role("button", name="Save").click()
        expect(page.get_by_text("OpenAI is set up: the credentials work.")).to_be_visible()
        expect(page.get_by_test_id("provider-status")).to_have_text("Configured")
        models = page.get_by_test_id("models-table")
        expect(models).to_contain_text("GPT-4o mini")
        assert KEY not in page.content()
        expect(form.get_by_label("API Key")).to_have_value("")
        expect(form.get_by_label("API Key")).to_have_attribute(
            "placeholder", "sk-e2…42 — leave empty to keep"
        )
        assert any(r.path == "/v1/models" for r in fake.requests)

        # Switching a model off swaps its row in place (HTMX), and on again.
        row = models.locator("tr", has_text="GPT-4.1 mini")
        row.get_by_role("button", name="Disable GPT-4.1 mini").click()
        row = models.locator("tr", has_text="GPT-4.1 mini")
        expect(row).to_contain_text("Disabled")
        row.get_by_role("button", name="Enable GPT-4.1 mini").click()
        expect(models.locator("tr", has_text="GPT-4.1 mini")).to_contain_text("Enabled")
        _shot(page, "provider-openai")

        # Back on the list, OpenAI is set up, and its model becomes the default.
        page.get_by_role("link", name="All model providers").click()
        expect(page.get_by_test_id("providers-set-up")).to_contain_text("OpenAI")
        expect(page.get_by_test_id("provider-openai")).to_contain_text("Configured")
        page.get_by_label("Reasoning").select_option(label="GPT-4o mini")
        page.get_by_role("button", name="Save defaults").click()
        expect(page.get_by_text("Default models saved.")).to_be_visible()
        expect(page.get_by_label("Reasoning")).to_have_value("openai/gpt-4o-mini")
        _shot(page, "providers-list-set-up")

        # The custom-model form shows only the fields of the chosen model type.
        page.goto(f"{base}/settings/providers/openai_api_compatible/")
        custom = page.get_by_test_id("custom-model-form")
        expect(custom.get_by_label("Completion mode")).to_be_visible()
        expect(custom.get_by_label("Texts per request")).to_be_hidden()
        custom.get_by_label("Model type").select_option(label="Text embedding")
        expect(custom.get_by_label("Completion mode")).to_be_hidden()
        expect(custom.get_by_label("Texts per request")).to_be_visible()
        _shot(page, "provider-compatible")

        # At phone width both pages still fit.
        page.set_viewport_size(PHONE)
        page.goto(f"{base}/settings/providers/")
        _shot(page, "providers-list-phone")
        page.goto(f"{base}/settings/providers/openai/")
        expect(page.get_by_test_id("provider-status")).to_have_text("Configured")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page scrolls sideways ({width}px)"
        _shot(page, "provider-openai-phone")
