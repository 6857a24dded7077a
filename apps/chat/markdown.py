"""Model output as HTML. An answer is untrusted text: a prompt-injected model may write
anything. So Markdown is rendered with raw HTML off, then the result goes through nh3
(an allow-list sanitiser) before it reaches a page.

Three rules on top of plain sanitising:
- links open in a new tab with `rel="noopener noreferrer nofollow"`, and only http(s)
  and mailto links survive;
- an image is never loaded by itself: it becomes a button that loads it on click
  (static/js/orrery.js), so an answer cannot leak the conversation to an attacker's
  server through an image URL the browser fetches on its own;
- code blocks are escaped, keep their language as a class, and get a copy button."""

from __future__ import annotations

from html import escape
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt

# "commonmark" plus tables and strikethrough; html=False renders raw HTML as text.
_md = (
    MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    .enable("table")
    .enable("strikethrough")
)
_md.validateLink = lambda url: _safe_link(url)  # type: ignore[method-assign]

LINK_SCHEMES = {"http", "https", "mailto"}
IMAGE_SCHEMES = {"http", "https"}
LINK_REL = "noopener noreferrer nofollow"

ALLOWED_TAGS = {
    "p", "br", "hr", "blockquote", "pre", "code", "em", "strong", "del", "s",
    "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "a",
    "table", "thead", "tbody", "tr", "th", "td", "div", "span", "button",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "ol": {"start"},
    "th": {"style"},
    "td": {"style"},
    "div": {"class"},
    "span": {"class"},
    "button": {"type", "class", "data-image-src", "data-image-alt", "data-copy-code"},
}


def _safe_link(url: str) -> bool:
    """markdown-it's own check, stricter: http(s), mailto and in-page anchors only."""
    url = url.strip()
    if url.startswith("#"):
        return True
    return urlsplit(url).scheme.lower() in LINK_SCHEMES


def _render_image(renderer, tokens, idx, options, env) -> str:
    token = tokens[idx]
    src = token.attrGet("src") or ""
    alt = token.content or ""
    if urlsplit(src).scheme.lower() not in IMAGE_SCHEMES:
        return escape(f"[image: {alt}]" if alt else "[image]")
    host = urlsplit(src).hostname or ""
    label = f"Load image from {host}" + (f": {alt}" if alt else "")
    return (
        '<button type="button" class="md-image" '
        f'data-image-src="{escape(src)}" data-image-alt="{escape(alt)}">{escape(label)}</button>'
    )


def _render_fence(renderer, tokens, idx, options, env) -> str:
    token = tokens[idx]
    language = (token.info or "").strip().split(" ")[0]
    css = f' class="language-{escape(language)}"' if language.replace("-", "").isalnum() else ""
    head = f'<span class="md-code-lang">{escape(language)}</span>' if css else ""
    return (
        f'<div class="md-code">{head}'
        '<button type="button" class="md-copy" data-copy-code>Copy</button>'
        f"<pre><code{css}>{escape(token.content)}</code></pre></div>"
    )


_md.add_render_rule("image", _render_image)
_md.add_render_rule("fence", _render_fence)


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "class" and not all(
        part.startswith(("language-", "md-")) for part in value.split()
    ):
        return None
    if attribute == "style" and value not in ("text-align:left", "text-align:center",
                                              "text-align:right"):  # fmt: skip
        return None
    if attribute == "data-image-src" and urlsplit(value).scheme.lower() not in IMAGE_SCHEMES:
        return None
    return value


def sanitize(html: str) -> str:
    """Any HTML down to the allow-list: no script, no event handlers, no images, no
    javascript: or data: URLs; every link gets target=_blank and our rel."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=LINK_SCHEMES,
        link_rel=LINK_REL,
        attribute_filter=_attribute_filter,
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    )


def render_markdown(text: str) -> str:
    """An answer's Markdown as safe HTML, ready for a template (mark it safe there)."""
    if not text:
        return ""
    return sanitize(_md.render(text))


_FENCES = ("```", "~~~")


class GrowingMarkdown:
    """The HTML of an answer that grows while it streams, for frame after frame.

    Rendering the whole answer on every frame costs more as it grows (a 300-token answer
    sent in 150 frames renders 150 times). Blocks that a blank line has closed, outside a
    code fence, are rendered once and kept; each frame renders only the open last block.
    Blocks rendered apart may differ in small ways from one render of the whole (a list
    broken by a blank line becomes two lists): the finished answer is rendered whole."""

    def __init__(self) -> None:
        self._kept_html = ""
        self._kept_upto = 0  # the text before this offset is in _kept_html

    def render(self, text: str) -> str:
        cut = _closed_blocks_end(text, self._kept_upto)
        if cut > self._kept_upto:
            self._kept_html += render_markdown(text[self._kept_upto : cut])
            self._kept_upto = cut
        return self._kept_html + render_markdown(text[self._kept_upto :])


def _closed_blocks_end(text: str, start: int) -> int:
    """The offset just after the last blank line past `start` that no code fence spans
    (counting fences from `start`, where none is open), or `start` if there is none."""
    end, fenced, offset = start, False, start
    for line in text[start:].splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith(_FENCES):
            fenced = not fenced
        elif not stripped and not fenced and line.endswith("\n"):
            end = offset + len(line)
        offset += len(line)
    return end
