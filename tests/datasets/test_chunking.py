"""Process rules as Dify defines them: sizes in characters, automatic 500/50, custom
separator (a typed \\n is a newline) with 50–4000 characters, pre-processing, parent-child."""

from __future__ import annotations

import pytest

from apps.datasets.chunking import InvalidProcessRule, chunk_text, normalize_process_rule
from apps.datasets.cleaning import clean

SENTENCES = " ".join(f"Sentence number {n} talks about orbit {n}." for n in range(200))


def custom(separator="\\n", max_tokens=100, overlap=0, **rules):
    return {
        "mode": "custom",
        "rules": {
            "pre_processing_rules": rules.pop("pre", []),
            "segmentation": {
                "separator": separator,
                "max_tokens": max_tokens,
                "chunk_overlap": overlap,
            },
            **rules,
        },
    }


def chunks_of(text, rule, doc_form="text_model"):
    normalized, form = normalize_process_rule(rule, doc_form=doc_form)
    return chunk_text(text, normalized, form)


def test_automatic_rule_is_dify_default_500_characters_with_overlap():
    rule, form = normalize_process_rule(None)
    assert rule["mode"] == "automatic" and form == "text_model"
    assert rule["rules"]["segmentation"]["max_tokens"] == 500
    assert rule["rules"]["segmentation"]["chunk_overlap"] == 50
    chunks = [c.content for c in chunks_of(SENTENCES, None)]
    assert len(chunks) > 10
    assert all(len(c) <= 500 for c in chunks)
    assert all(c.endswith(".") for c in chunks)  # cut between sentences, not inside words
    # Neighbours repeat some text: the overlap.
    assert all(a.rsplit(". ", 1)[-1] in b for a, b in zip(chunks, chunks[1:], strict=False))


def test_custom_separator_typed_as_backslash_n_cuts_at_newlines():
    text = "Mercury is hot.\nVenus is cloudy.\nEarth has life."
    assert [c.content for c in chunks_of(text, custom("\\n"))] == [
        "Mercury is hot.",
        "Venus is cloudy.",
        "Earth has life.",
    ]


def test_custom_separator_of_any_text():
    text = "alpha###beta###gamma"
    assert [c.content for c in chunks_of(text, custom("###"))] == ["alpha", "beta", "gamma"]


def test_a_piece_longer_than_the_maximum_is_split_again_with_overlap():
    chunks = [c.content for c in chunks_of(SENTENCES, custom("\\n", max_tokens=120, overlap=40))]
    assert len(chunks) > 20
    assert all(len(c) <= 120 for c in chunks)
    assert chunks[0].split(". ")[-1] in chunks[1]


def test_a_long_word_is_cut_by_characters():
    chunks = [c.content for c in chunks_of("x" * 260, custom("\\n", max_tokens=100))]
    assert [len(c) for c in chunks] == [100, 100, 60]


@pytest.mark.parametrize(
    ("max_tokens", "overlap", "says"),
    [
        pytest.param(49, 0, "between 50 and 4000", id="too-small"),
        pytest.param(4001, 0, "between 50 and 4000", id="too-large"),
        pytest.param("big", 0, "whole number", id="not-a-number"),
        pytest.param(100, 100, "less than the maximum", id="overlap-too-large"),
        pytest.param(100, -1, "at least 0", id="negative-overlap"),
    ],
)
def test_chunk_sizes_out_of_range_are_refused(max_tokens, overlap, says):
    with pytest.raises(InvalidProcessRule, match=says):
        normalize_process_rule(custom(max_tokens=max_tokens, overlap=overlap))


def test_unknown_modes_and_rules_are_refused():
    with pytest.raises(InvalidProcessRule, match="mode"):
        normalize_process_rule({"mode": "magic"})
    with pytest.raises(InvalidProcessRule, match="pre-processing rule"):
        normalize_process_rule(custom(pre=[{"id": "remove_everything", "enabled": True}]))
    with pytest.raises(InvalidProcessRule, match="parent_mode"):
        normalize_process_rule({"mode": "hierarchical", "rules": {"parent_mode": "chapter"}})


def test_remove_extra_spaces_collapses_blank_lines_and_spaces():
    rules = [{"id": "remove_extra_spaces", "enabled": True}]
    assert clean("a   b\t\tc\n\n\n\n\nd", rules) == "a b c\n\nd"
    assert clean("a   b", []) == "a   b"


def test_remove_urls_emails_keeps_markdown_link_targets():
    rules = [{"id": "remove_urls_emails", "enabled": True}]
    text = (
        "Mail ada@example.com or see https://example.com/x and [docs](https://docs.example.com/a)."
    )
    cleaned = clean(text, rules)
    assert "ada@example.com" not in cleaned
    assert "https://example.com/x" not in cleaned
    assert "[docs](https://docs.example.com/a)" in cleaned


def test_control_characters_and_special_token_bars_always_go():
    assert clean("a\x00b\x07c <|endoftext|> \ufffe", []) == "abc <endoftext> "


def test_parent_child_paragraph_mode_splits_parents_then_children():
    text = "Mars is red.\nIt has two moons.\n\nVenus is hot.\nIt spins backwards."
    rule = {"mode": "hierarchical", "rules": {"parent_mode": "paragraph"}}
    chunks = chunks_of(text, rule, doc_form="hierarchical_model")
    assert [c.content for c in chunks] == [
        "Mars is red.\nIt has two moons.",
        "Venus is hot.\nIt spins backwards.",
    ]
    assert chunks[0].children == ["Mars is red.", "It has two moons."]
    assert chunks[1].children == ["Venus is hot.", "It spins backwards."]


def test_parent_child_full_doc_mode_has_one_parent():
    text = "Mars is red.\nIt has two moons.\n\nVenus is hot."
    rule = {"mode": "hierarchical", "rules": {"parent_mode": "full-doc"}}
    chunks = chunks_of(text, rule, doc_form="hierarchical_model")
    assert len(chunks) == 1
    assert chunks[0].content == text
    assert chunks[0].children == ["Mars is red.", "It has two moons.", "Venus is hot."]


def test_a_hierarchical_rule_makes_the_document_parent_child():
    rule, form = normalize_process_rule({"mode": "hierarchical"}, doc_form="text_model")
    assert form == "hierarchical_model"
    assert rule["rules"]["subchunk_segmentation"]["max_tokens"] == 512
