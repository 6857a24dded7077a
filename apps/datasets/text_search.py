"""Full-text search settings shared by indexing (which fills `Segment.search_vector`) and
retrieval (which queries it): both must use the same text-search configuration.

We use PostgreSQL's `english` configuration: it stems ("passwords", "resetting" match
"password", "reset") and drops English stop words. Text in other languages is still split
into words and matched exactly, only without stemming. Keywords a user gave a chunk are
indexed with weight A, the content with the default weight D, so a keyword match ranks
higher than the same word in the body."""

from __future__ import annotations

from django.contrib.postgres.search import SearchVector
from django.db import connection
from django.db.models import Value

TEXT_SEARCH_CONFIG = "english"
MAX_QUERY_TERMS = 8  # longer queries keep their longest (most specific) words


def search_vector_value(content: str, keywords: list[str] | tuple = (), answer: str = ""):
    """An expression for `Segment.search_vector`, for `.update(search_vector=...)` or a
    save: the content (and a Q&A answer) plus the keywords, weighted A."""
    vector = SearchVector(Value(f"{content}\n{answer}".strip()), config=TEXT_SEARCH_CONFIG)
    if keywords:
        vector = vector + SearchVector(
            Value(" ".join(keywords)), config=TEXT_SEARCH_CONFIG, weight="A"
        )
    return vector


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
