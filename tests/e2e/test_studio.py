"""An editor builds a chat assistant: creates it, picks a (fake) model and writes its
prompt with a variable, tries it in the preview pane while the answer streams in, saves,
publishes it with a key, and finds the conversation in the logs."""

import re
import time

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import shot
from tests.e2e.test_playground import PASSWORD, api
from tests.fakes.openai import DEFAULT_MODELS, FakeOpenAI, openai_error

pytestmark = pytest.mark.browser

FAKE_KEY = "sk-fake-studio"
QUESTION = "Which planet of our solar system has the most moons, and how many of them have names"


def sign_up_with_openai(page, base, fake) -> None:
    page.goto(f"{base}/signup/")
    page.get_by_label("Your name").fill("Grace Hopper")
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{base}/apps/")
    page.goto(f"{base}/settings/api-keys/")
    page.get_by_label("Key name").fill("setup")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("[data-testid=new-api-key] code").inner_text().strip()
    api(
        base,
        key,
        "PUT",
        "/providers/openai/credentials",
        {"credentials": {"openai_api_key": FAKE_KEY, "openai_api_base": fake.url}},
    )
    api(base, key, "PUT", "/default-models/llm", {"provider": "openai", "model": "gpt-4o-mini"})


def test_build_preview_publish_and_read_the_logs(browser_page, live_server_url):
    page, base = browser_page, live_server_url
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    with FakeOpenAI(api_key=FAKE_KEY, chunk_delay=0.05) as fake:
        sign_up_with_openai(page, base, fake)

        # An empty workspace invites her to create an app.
        page.goto(f"{base}/apps/")
        expect(page.get_by_test_id("apps-empty")).to_be_visible()
        shot(page, "studio-apps-empty")
        expect(page.get_by_role("radio", name="Agent")).to_be_disabled()
        page.get_by_role("radio", name="Chat assistant").check()
        page.get_by_label("Name", exact=True).fill("Moon guide")
        page.get_by_label("Icon (an emoji)").fill("🌙")
        page.get_by_role("button", name="Create", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Moon guide")

        # She picks the model, a prompt with a variable, and declares the variable.
        page.get_by_label("Model", exact=True).select_option("openai/gpt-4o-mini")
        page.get_by_label("System prompt").fill("You know the moons of {{planet}}.")
        page.get_by_role("button", name="Save configuration").click()
        errors_box = page.get_by_test_id("config-errors")
        expect(errors_box).to_be_visible()
        expect(page.locator(".has-error").first).to_contain_text("{{planet}}")
        shot(page, "studio-config-error")
        page.get_by_label("Variable name").last.fill("planet")
        page.get_by_label("Label").last.fill("Planet")
        page.get_by_label("Opening statement").fill("Ask me about moons.")
        page.get_by_role("button", name="Save configuration").click()
        expect(page.get_by_text("Configuration saved.")).to_be_visible()
        expect(page.get_by_label("System prompt")).to_have_value(
            "You know the moons of {{planet}}."
        )
        shot(page, "studio-configure")

        # The preview answers with what is on the page, streaming.
        preview = page.get_by_test_id("debug-pane")
        preview.get_by_label("Planet").fill("Saturn")
        preview.get_by_label("Message").fill(QUESTION)
        preview.get_by_role("button", name="Send").click()
        answer = preview.get_by_test_id("answer").last
        seen: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = answer.inner_text() if answer.count() else ""
            if text and (not seen or seen[-1] != text):
                seen.append(text)
            if QUESTION in text:
                break
            page.wait_for_timeout(15)
        assert seen and QUESTION in seen[-1], seen
        assert len(seen) > 2, seen  # it grew token by token
        expect(preview.get_by_test_id("turn").last).to_have_attribute("data-status", "normal")
        expect(preview.get_by_test_id("answer").last).to_have_text(f"You said: {QUESTION}")
        shot(page, "studio-preview")

        # Publishing: a key shown once.
        page.get_by_role("navigation", name="App").get_by_role("link", name="Publish").click()
        page.get_by_label("Key name").fill("backend")
        page.get_by_role("button", name="Create key").click()
        expect(page.get_by_test_id("new-app-key")).to_contain_text("app-")
        shot(page, "studio-publish")

        # The logs show the preview's turn with its model and usage.
        page.get_by_role("navigation", name="App").get_by_role("link", name="Logs").click()
        row = page.get_by_test_id("log-row").first
        expect(row).to_contain_text(QUESTION)
        expect(row).to_contain_text("gpt-4o-mini")
        shot(page, "studio-logs")
        row.get_by_role("link").first.click()
        usage = re.compile(r"Tokens\d+ in, \d+ out")
        expect(page.get_by_test_id("message-meta")).to_contain_text(usage)
        shot(page, "studio-message")
        page.get_by_role("button", name="Save as annotation").click()
        expect(page.get_by_text("Saved as an annotation")).to_be_visible()
        page.get_by_role("navigation", name="App").get_by_role("link", name="Annotations").click()
        expect(page.get_by_test_id("annotation")).to_contain_text(QUESTION)
        shot(page, "studio-annotations")

        # The list shows the card; on a phone too.
        page.goto(f"{base}/apps/")
        expect(page.get_by_test_id("app-card")).to_contain_text("Moon guide")
        shot(page, "studio-apps")
        page.set_viewport_size({"width": 390, "height": 844})
        shot(page, "studio-apps-phone")
        page.get_by_test_id("app-card").get_by_role("link", name="Moon guide").click()
        expect(page.get_by_label("System prompt")).to_be_visible()
        shot(page, "studio-configure-phone")
    assert not errors, errors


def test_fallback_models_are_listed_in_order_and_answer_when_the_model_fails(
    browser_page, live_server_url
):
    page, base = browser_page, live_server_url
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    with FakeOpenAI(api_key=FAKE_KEY, models=(*DEFAULT_MODELS, "gpt-4.1")) as fake:
        sign_up_with_openai(page, base, fake)
        page.goto(f"{base}/apps/")
        page.get_by_role("radio", name="Chat assistant").check()
        page.get_by_label("Name", exact=True).fill("Sturdy guide")
        page.get_by_role("button", name="Create", exact=True).click()
        page.get_by_label("Model", exact=True).select_option("openai/gpt-4o-mini")
        fallbacks = page.get_by_test_id("fallbacks")
        expect(fallbacks.get_by_test_id("fallbacks-empty")).to_have_text(
            "No fallback models: if the model fails, the answer fails."
        )

        # She adds two fallbacks and puts the second first.
        for model in ("openai/gpt-4o", "openai/gpt-4.1"):
            page.get_by_label("Fallback model to add").select_option(model)
            fallbacks.get_by_role("button", name="Add").click()
            expect(fallbacks.locator("code", has_text=model)).to_be_visible()
        fallbacks.get_by_role("button", name="Move openai/gpt-4.1 up").click()
        expect(fallbacks.locator(".fallback-name")).to_have_text(
            ["openai/gpt-4.1", "openai/gpt-4o"]
        )
        page.get_by_role("button", name="Save configuration").click()
        expect(page.get_by_text("Configuration saved.")).to_be_visible()
        expect(fallbacks.locator(".fallback-name")).to_have_text(
            ["openai/gpt-4.1", "openai/gpt-4o"]
        )
        shot(page, "studio-fallbacks")

        # The model is overloaded: the preview's answer comes from the first fallback.
        fake.queue(openai_error(503))
        preview = page.get_by_test_id("debug-pane")
        preview.get_by_label("Message").fill("are you there")
        preview.get_by_role("button", name="Send").click()
        expect(preview.get_by_test_id("answer").last).to_have_text(
            "You said: are you there", timeout=20_000
        )
        page.get_by_role("navigation", name="App").get_by_role("link", name="Logs").click()
        expect(page.get_by_test_id("log-row").first).to_contain_text("gpt-4.1")
    assert not errors, errors
