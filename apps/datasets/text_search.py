"""The query side of full-text search. Indexing fills `Segment.search_vector`
(apps.datasets.indexing.update_search_vectors: content with weight A, answer and keywords
with weight B) with the configuration `TEXT_SEARCH_CONFIG` below; queries are parsed with the
same one.

That configuration is PostgreSQL's `english`: it stems ("passwords", "resetting" match
"password", "reset") and drops English stop words. Text in other languages is still split
into words and matched exactly, only without stemming."""

from __future__ import annotations

from django.db import connection

TEXT_SEARCH_CONFIG = "english"
MAX_QUERY_TERMS = 8  # longer queries keep their longest (most specific) words


def query_terms(text: str) -> list[str]:
    """The query's terms as tsquery fragments (a lexeme, or a phrase for a hyphenated word),
    normalised by the same configuration as the index. Stop words alone give none."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT plainto_tsquery(%s::regconfig, %s)::text", [TEXT_SEARCH_CONFIG, text]
        )
        parsed = cursor.fetchone()[0] or ""
    terms = list(dict.fromkeys(t.strip() for t in parsed.split(" & ") if t.strip()))
    if len(terms) > MAX_QUERY_TERMS:
        longest = set(sorted(terms, key=len, reverse=True)[:MAX_QUERY_TERMS])
        terms = [t for t in terms if t in longest]
    return terms
