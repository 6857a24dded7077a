"""Text clean-up before chunking, with the pre-processing rules of Dify's process_rule.

Always: special-token brackets `<|` `|>` lose their bars, and control characters (other
than tab and newline) and U+FFFE go. `remove_extra_spaces`: three or more newlines become
two, runs of horizontal whitespace become one space. `remove_urls_emails`: e-mail
addresses and bare URLs go, but the URL of a Markdown link or image stays."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe]")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_MANY_SPACES = re.compile(r"[\t\f\r\x0b \u00a0\u2000-\u200a\u202f\u205f\u3000]{2,}")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_MARKDOWN_LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\s*(?:\"[^\"]*\")?\))")
_URL = re.compile(r"https?://[^\s<>\"')\]]+")

RULE_IDS = ("remove_extra_spaces", "remove_urls_emails", "remove_stopwords")


def enabled_rules(pre_processing_rules: list[dict] | None) -> set[str]:
    return {
        rule.get("id", "")
        for rule in pre_processing_rules or []
        if isinstance(rule, dict) and rule.get("enabled")
    }


def clean(text: str, pre_processing_rules: list[dict] | None = None) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("<|", "<").replace("|>", ">")
    text = _CONTROL.sub("", text)
    rules = enabled_rules(pre_processing_rules)
    if "remove_extra_spaces" in rules:
        text = _MANY_NEWLINES.sub("\n\n", text)
        text = _MANY_SPACES.sub(" ", text)
    if "remove_urls_emails" in rules:
        text = _remove_urls_emails(text)
    return text


def _remove_urls_emails(text: str) -> str:
    # Markdown link targets are set aside so the bare-URL pass cannot touch them.
    kept: list[str] = []

    def keep(match: re.Match) -> str:
        kept.append(match.group(2))
        return f"{match.group(1)}\x00{len(kept) - 1}\x00{match.group(3)}"

    text = _MARKDOWN_LINK.sub(keep, text)
    text = _EMAIL.sub("", text)
    text = _URL.sub("", text)
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], text)
