"""Chunking with Dify's process_rule semantics, on a recursive splitter of our own.

Sizes are characters, as in Dify (its `max_tokens` counts characters despite the name).

- automatic: a recursive split on paragraph, sentence, word and character boundaries,
  pieces merged up to 500 characters with 50 characters of overlap.
- custom: the text is cut at the separator (a typed `\\n` means a newline); each piece is a
  chunk, and a piece longer than max_tokens is split recursively with chunk_overlap.
- hierarchical (doc_form hierarchical_model): parents by `segmentation` (parent_mode
  paragraph) or the whole document as one parent (parent_mode full-doc); each parent's
  children by `subchunk_segmentation`. Children are matched, parents returned as context.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from apps.core.errors import DomainError
from apps.datasets.cleaning import RULE_IDS, clean
from apps.datasets.models import DocForm

MIN_CHUNK = 50
MAX_CHUNK = 4000
RECURSIVE_SEPARATORS = ("\n\n", "。", ". ", " ", "")

AUTOMATIC_RULES: dict = {
    "pre_processing_rules": [
        {"id": "remove_extra_spaces", "enabled": True},
        {"id": "remove_urls_emails", "enabled": False},
    ],
    "segmentation": {"separator": "\n", "max_tokens": 500, "chunk_overlap": 50},
}
CUSTOM_DEFAULTS: dict = {"separator": "\n", "max_tokens": 1024, "chunk_overlap": 50}
HIERARCHICAL_RULES: dict = {
    "pre_processing_rules": [
        {"id": "remove_extra_spaces", "enabled": True},
        {"id": "remove_urls_emails", "enabled": False},
    ],
    "segmentation": {"separator": "\n\n", "max_tokens": 1024, "chunk_overlap": 0},
    "parent_mode": "paragraph",
    "subchunk_segmentation": {"separator": "\n", "max_tokens": 512, "chunk_overlap": 0},
}
PARENT_MODES = ("paragraph", "full-doc")


class InvalidProcessRule(DomainError):
    code = "invalid_param"


@dataclass
class Chunk:
    content: str
    children: list[str] = field(default_factory=list)


# --- Rules ------------------------------------------------------------------------------


def normalize_process_rule(rule: dict | None, *, doc_form: str = DocForm.TEXT) -> tuple[dict, str]:
    """A complete, validated process_rule and the doc_form it implies.

    Missing parts take Dify's defaults; a hierarchical rule makes the document
    hierarchical_model, and a hierarchical_model document without one gets the defaults.
    """
    if doc_form not in DocForm.values:
        raise InvalidProcessRule(
            f"doc_form must be one of {', '.join(DocForm.values)}, not {doc_form!r}."
        )
    rule = rule if isinstance(rule, dict) else {}
    mode = rule.get("mode") or ("hierarchical" if doc_form == DocForm.HIERARCHICAL else "automatic")
    if mode not in ("automatic", "custom", "hierarchical"):
        raise InvalidProcessRule(
            f"process_rule.mode must be automatic, custom or hierarchical, not {mode!r}."
        )
    given = rule.get("rules") if isinstance(rule.get("rules"), dict) else {}
    if mode == "automatic" and doc_form != DocForm.HIERARCHICAL:
        return {"mode": "automatic", "rules": copy.deepcopy(AUTOMATIC_RULES)}, DocForm.TEXT
    if mode == "automatic":  # a parent-child document asked for defaults
        return {"mode": "hierarchical", "rules": copy.deepcopy(HIERARCHICAL_RULES)}, doc_form
    if mode == "custom" and doc_form == DocForm.HIERARCHICAL:
        mode = "hierarchical"
    defaults = HIERARCHICAL_RULES if mode == "hierarchical" else AUTOMATIC_RULES
    rules = {
        "pre_processing_rules": _pre_processing(
            given.get("pre_processing_rules", defaults["pre_processing_rules"])
        ),
        "segmentation": _segmentation(
            given.get("segmentation"),
            HIERARCHICAL_RULES["segmentation"] if mode == "hierarchical" else CUSTOM_DEFAULTS,
            "segmentation",
        ),
    }
    if mode == "hierarchical":
        parent_mode = given.get("parent_mode") or "paragraph"
        if parent_mode not in PARENT_MODES:
            raise InvalidProcessRule(
                f"parent_mode must be paragraph or full-doc, not {parent_mode!r}."
            )
        rules["parent_mode"] = parent_mode
        rules["subchunk_segmentation"] = _segmentation(
            given.get("subchunk_segmentation"),
            HIERARCHICAL_RULES["subchunk_segmentation"],
            "subchunk_segmentation",
        )
        doc_form = DocForm.HIERARCHICAL
    else:
        doc_form = DocForm.TEXT
    return {"mode": mode, "rules": rules}, doc_form


def _pre_processing(rules) -> list[dict]:
    if not isinstance(rules, list):
        raise InvalidProcessRule("pre_processing_rules must be a list of {id, enabled}.")
    chosen = {}
    for rule in rules:
        if not isinstance(rule, dict) or rule.get("id") not in RULE_IDS:
            raise InvalidProcessRule(
                f"Unknown pre-processing rule {rule!r}: use one of {', '.join(RULE_IDS)}."
            )
        chosen[rule["id"]] = bool(rule.get("enabled"))
    return [{"id": rule_id, "enabled": enabled} for rule_id, enabled in chosen.items()]


def _segmentation(given, defaults: dict, where: str) -> dict:
    given = given if isinstance(given, dict) else {}
    separator = given.get("separator", defaults["separator"])
    if not isinstance(separator, str):
        raise InvalidProcessRule(f"{where}.separator must be text.")
    size = _integer(given.get("max_tokens", defaults["max_tokens"]), f"{where}.max_tokens")
    overlap = _integer(
        given.get("chunk_overlap", defaults["chunk_overlap"]) or 0, f"{where}.chunk_overlap"
    )
    if not MIN_CHUNK <= size <= MAX_CHUNK:
        raise InvalidProcessRule(
            f"The maximum chunk length must be between {MIN_CHUNK} and {MAX_CHUNK} "
            f"characters (got {size})."
        )
    if not 0 <= overlap < size:
        raise InvalidProcessRule(
            f"The chunk overlap must be at least 0 and less than the maximum chunk length "
            f"({size}); got {overlap}."
        )
    return {"separator": separator, "max_tokens": size, "chunk_overlap": overlap}


def _integer(value, where: str) -> int:
    if isinstance(value, bool):
        raise InvalidProcessRule(f"{where} must be a whole number.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidProcessRule(f"{where} must be a whole number, not {value!r}.") from None


def unescape_separator(separator: str) -> str:
    """A separator typed in a form or JSON as `\\n` means a newline (and `\\t` a tab)."""
    return separator.replace("\\n", "\n").replace("\\t", "\t")


# --- Splitting --------------------------------------------------------------------------


def chunk_text(text: str, process_rule: dict, doc_form: str = DocForm.TEXT) -> list[Chunk]:
    """Clean and cut a document's text as the (normalized) process_rule says."""
    rules = process_rule["rules"]
    text = clean(text, rules.get("pre_processing_rules"))
    segmentation = rules["segmentation"]
    if process_rule["mode"] == "automatic":
        pieces = split_recursive(
            text, segmentation["max_tokens"], segmentation["chunk_overlap"], RECURSIVE_SEPARATORS
        )
        return [Chunk(piece) for piece in pieces]
    if doc_form != DocForm.HIERARCHICAL:
        return [Chunk(piece) for piece in split_by_rule(text, segmentation)]
    if rules.get("parent_mode") == "full-doc":
        parents = [text.strip()] if text.strip() else []
    else:
        parents = split_by_rule(text, segmentation)
    chunks = []
    for parent in parents:
        children = split_by_rule(parent, rules["subchunk_segmentation"])
        if children:
            chunks.append(Chunk(parent, children))
    return chunks


def split_by_rule(text: str, segmentation: dict) -> list[str]:
    """Cut at the separator; pieces too long are split recursively with overlap."""
    separator = unescape_separator(segmentation["separator"])
    size, overlap = segmentation["max_tokens"], segmentation["chunk_overlap"]
    pieces = text.split(separator) if separator else [text]
    chunks: list[str] = []
    for piece in pieces:
        if len(piece) > size:
            chunks.extend(split_recursive(piece, size, overlap, RECURSIVE_SEPARATORS))
        elif piece.strip():
            chunks.append(piece.strip())
    return chunks


def split_recursive(
    text: str, size: int, overlap: int, separators: tuple[str, ...] = RECURSIVE_SEPARATORS
) -> list[str]:
    """Split on the first separator present, merge neighbours up to `size` characters with
    about `overlap` characters repeated between chunks, recurse into pieces still too long.
    A separator stays at the end of the piece before it, so sentences keep their stops."""
    if len(text) <= size:
        return [text.strip()] if text.strip() else []
    index = next(i for i, sep in enumerate(separators) if sep == "" or sep in text)
    separator, finer = separators[index], separators[index + 1 :]
    pieces = _split_keeping(text, separator)
    chunks: list[str] = []
    fitting: list[str] = []
    for piece in pieces:
        if len(piece) <= size:
            fitting.append(piece)
            continue
        chunks.extend(_merge(fitting, size, overlap))
        fitting = []
        chunks.extend(split_recursive(piece, size, overlap, finer) if finer else [piece])
    chunks.extend(_merge(fitting, size, overlap))
    return chunks


def _split_keeping(text: str, separator: str) -> list[str]:
    if not separator:
        return list(text)
    parts = text.split(separator)
    pieces = [part + separator for part in parts[:-1]]
    if parts[-1]:
        pieces.append(parts[-1])
    return pieces


def _merge(pieces: list[str], size: int, overlap: int) -> list[str]:
    chunks: list[str] = []
    window: list[str] = []
    total = 0
    for piece in pieces:
        if window and total + len(piece) > size:
            _emit(chunks, window)
            # Keep the tail of the window as the overlap, but leave room for the new piece.
            while window and (total > overlap or total + len(piece) > size):
                total -= len(window.pop(0))
        window.append(piece)
        total += len(piece)
    _emit(chunks, window)
    return chunks


def _emit(chunks: list[str], window: list[str]) -> None:
    text = "".join(window).strip()
    if text:
        chunks.append(text)
