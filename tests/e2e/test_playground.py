"""A newcomer sets up OpenAI (a fake one), tries a model in the playground and watches the
answer stream in, stops a long one, then reads what it cost on the usage page."""

import json
import time
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import shot
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.browser

PASSWORD = "orbit-Correct-Horse-42"
FAKE_KEY = "sk-fake-e2e"
QUESTION = "Tell me how the planets of an orrery turn around the sun"
ANSWER = f"You said: {QUESTION}"
LONG_QUESTION = " ".join(f"planet{i}" for i in range(80))


def api(base: str, key: str, method: str, path: str, body: dict) -> dict:
    """The management API, as a script would call it (no database access from the test:
    Playwright's event loop runs in this thread)."""
    request = urllib.request.Request(
        f"{base}/api{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_try_a_model_and_see_what_it_cost(browser_page, live_server_url, transactional_db):
    page, base = browser_page, live_server_url
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    with FakeOpenAI(api_key=FAKE_KEY, chunk_delay=0.05) as fake:
        # Ada signs up, and creates a management key to set things up from a script.
        page.goto(f"{base}/signup/")
        page.get_by_label("Your name").fill("Ada Lovelace")
        page.get_by_label("Email").fill("ada@example.com")
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

        # The playground opens on the default model, with its parameters.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Playground").click()
        expect(page).to_have_url(f"{base}/playground/")
        model = page.get_by_label("Model", exact=True)
        expect(model).to_have_value("openai/gpt-4o-mini")
        max_tokens = page.get_by_label("Max tokens")
        expect(max_tokens).to_have_attribute("max", "16384")

        # Another model brings its own controls (an htmx swap), and back again.
        model.select_option("openai/gpt-5")
        expect(page.get_by_label("Reasoning effort")).to_be_visible()
        expect(page.get_by_label("Temperature")).to_have_count(0)
        expect(max_tokens).to_have_attribute("max", "128000")
        model.select_option("openai/gpt-4o-mini")
        expect(page.get_by_label("Temperature")).to_have_value("0.7")

        # She asks; the answer grows token by token, then the usage line appears.
        page.get_by_label("System prompt").fill("You are an astronomer.")
        page.get_by_label("Message").fill(QUESTION)
        page.get_by_role("button", name="Send").click()
        answer = page.get_by_test_id("playground-answer")
        seen: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = answer.inner_text()
            if text and (not seen or seen[-1] != text):
                seen.append(text)
            if text == ANSWER:
                break
            page.wait_for_timeout(15)
        assert seen[-1] == ANSWER
        assert len(seen) > 2 and all(ANSWER.startswith(part) for part in seen), seen
        usage = page.get_by_test_id("playground-usage")
        expect(usage).to_contain_text("tokens in")
        expect(usage).to_contain_text("USD")
        expect(page.get_by_role("button", name="Send")).to_be_enabled()
        expect(page.get_by_role("button", name="Stop")).to_be_disabled()
        shot(page, "playground")

        # A long answer can be stopped half-way.
        page.get_by_label("Message").fill(LONG_QUESTION)
        page.get_by_label("Message").press("Control+Enter")
        expect(answer).to_contain_text("planet3")
        page.get_by_role("button", name="Stop").click()
        expect(page.locator("#playground-status")).to_have_text("Stopped.")
        assert "planet79" not in answer.inner_text()
        shot(page, "playground-stopped")

        # A value out of range that slips past the browser (its max removed here) is
        # refused by the server with a message.
        page.get_by_label("Temperature").evaluate("input => input.removeAttribute('max')")
        page.get_by_label("Temperature").fill("7")
        page.get_by_role("button", name="Send").click()
        expect(page.get_by_test_id("playground-error")).to_have_text(
            "Temperature must be between 0 and 2."
        )

    # The usage page counts both calls, the stopped one too.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Usage").click()
    expect(page).to_have_url(f"{base}/usage/")
    totals = page.get_by_test_id("usage-totals")
    expect(totals.get_by_role("row").filter(has_text="openai/gpt-4o-mini")).to_contain_text("2")
    expect(page.get_by_test_id("usage-latest")).to_contain_text("cancelled")
    expect(page.locator(".usage-chart svg rect").first).to_be_visible()
    shot(page, "usage")

    # And on a phone.
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "usage-phone")
    page.goto(f"{base}/playground/")
    expect(page.get_by_label("Message")).to_be_visible()
    shot(page, "playground-phone")
    assert not errors, errors  # no script broke on the way
