"""What builders paste into their own sites to embed a published chat: an iframe, or a
script (static/js/embed.js) that adds a floating chat button opening the app in a frame.
The web app pages allow framing by any site (apps/chat/views/webapp.py); nothing else in
Orrery does."""

from __future__ import annotations

from html import escape

from django.templatetags.static import static

from apps.chat.models import App
from apps.chat.visitors import site_path


def embed_snippets(*, app: App, site_url: str) -> dict[str, str]:
    """{"url", "iframe", "script"}: plain text, for a builder to copy (escape on display)."""
    base = site_url.rstrip("/")
    url = base + site_path(app)
    # Plain strings, not SafeStrings: a page shows them as text to copy, never as HTML.
    iframe = (
        f'<iframe src="{escape(url)}" style="width: 100%; height: 100%; min-height: 700px" '
        f'frameborder="0" allow="clipboard-write" title="{escape(app.name)}"></iframe>'
    )
    script = (
        f'<script src="{escape(base + static("js/embed.js"))}" data-orrery-chat="{escape(url)}" '
        f'data-orrery-label="{escape("Chat with " + app.name)}" defer></script>'
    )
    return {"url": url, "iframe": iframe, "script": script}
