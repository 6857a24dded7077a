"""Approximate-nearest-neighbour indexes on segment embeddings, one per embedding width.

The `embedding` column is an untyped `vector`, so datasets with different embedding
models share the table. pgvector's HNSW needs a fixed width, so each width gets a partial
expression index, created the first time a segment of that width is stored. A query uses
it only if it repeats the same expression and predicate: build it with `distance_sql`.
pgvector indexes `vector` up to 2,000 dimensions; wider embeddings are indexed as
`halfvec` (up to 4,000). Wider still is searched exactly, without an index."""

from __future__ import annotations

from django.db import connection

HNSW_VECTOR_MAX_DIM = 2000
HNSW_HALFVEC_MAX_DIM = 4000
_known: set[int] = set()  # widths whose index this process has already ensured


def cast_type(dim: int) -> str:
    _check(dim)
    return f"vector({dim})" if dim <= HNSW_VECTOR_MAX_DIM else f"halfvec({dim})"


def index_name(dim: int) -> str:
    return f"segment_embedding_hnsw_{int(dim)}"


def ensure_vector_index(dim: int) -> None:
    """Create the HNSW index for this width if it does not exist yet (idempotent)."""
    _check(dim)
    if dim in _known or dim > HNSW_HALFVEC_MAX_DIM:
        return
    kind = cast_type(dim)
    ops = "vector_cosine_ops" if kind.startswith("vector") else "halfvec_cosine_ops"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {index_name(dim)} ON datasets_segment "  # noqa: S608 - dim is an int
            f"USING hnsw ((embedding::{kind}) {ops}) "
            f"WITH (m = 16, ef_construction = 64) WHERE embedding_dim = {int(dim)}"
        )
    _known.add(dim)


def distance_sql(dim: int) -> tuple[str, str]:
    """(predicate, distance expression) for segments of this width; the distance takes the
    query vector as one `%s` parameter (a string like '[0.1,0.2,…]')."""
    kind = cast_type(dim)
    return (
        f"embedding_dim = {int(dim)}",
        f"(embedding::{kind} <=> %s::{kind})",
    )


def _check(dim: int) -> None:
    if not isinstance(dim, int) or dim <= 0 or dim > 16000:
        raise ValueError(f"Embedding width {dim!r} is not a positive integer of at most 16000.")
