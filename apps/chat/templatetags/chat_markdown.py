"""{{ message.answer|markdown }}: model output as sanitised HTML (apps/chat/markdown.py)."""

from django import template
from django.utils.safestring import SafeString, mark_safe

from apps.chat.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    # Safe because render_markdown sanitises with an allow-list (no raw HTML survives).
    return mark_safe(render_markdown(text or ""))  # noqa: S308
