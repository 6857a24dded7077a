"""What builders paste into their own sites to embed a published chat: an iframe, or a
script (static/js/embed.js) that adds a floating chat button opening the app in a frame.
The web app pages allow framing by any site (apps/chat/views/webapp.py); nothing else in
Orrery does."""

from __future__ import annotations

from django.templatetags.static import static
from django.utils.html import format_html

from apps.chat.models import App
from apps.chat.visitors import site_path


def embed_snippets(*, app: App, site_url: str) -> dict[str, str]:
    """{"url", "iframe", "script"}: plain text, for a builder to copy (escape on display)."""
    base = site_url.rstrip("/")
    url = base + site_path(app)
    iframe = format_html(
        '<iframe src="{}" style="width: 100%; height: 100%; min-height: 700px" '
        'frameborder="0" allow="clipboard-write" title="{}"></iframe>',
        url,
        app.name,
    )
    script = format_html(
        '<script src="{}" data-orrery-chat="{}" data-orrery-label="{}" defer></script>',
        base + static("js/embed.js"),
        url,
        f"Chat with {app.name}",
    )
    return {"url": url, "iframe": str(iframe), "script": str(script)}
