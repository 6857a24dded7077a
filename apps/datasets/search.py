"""The SQL under retrieval: candidate segments by vector distance and by full text, and
both scores for a given set of segments (hybrid search scores the union of both lists).

Only what a user would expect to be searched is: segments that are enabled and searchable
(parents of child chunks are not; their children are), in enabled, non-archived documents
whose indexing completed, in the given datasets of the given workspace."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from math import comb
from uuid import UUID

from django.db import connection, transaction

from apps.datasets.vector_index import distance_sql

# HNSW candidate list size. pgvector's default of 40 gives recall@10 near 0.9 on 100k
# chunks; 100 keeps it above 0.95 for a few milliseconds more (see bench_retrieval).
EF_SEARCH = 100
# Full-text relaxation: look for chunks holding m of the n query terms, m from n down, and
# skip a level whose combinations would make the tsquery too long.
MAX_TERM_COMBINATIONS = 70
MAX_RANKED = 1000


def set_search_options(sender=None, connection=None, **kwargs) -> None:
    """On each new database connection (the connection_created signal): HNSW scans use
    our ef_search, and keep scanning when filters drop hits (pgvector ≥ 0.8; older
    versions ignore it). Session-wide, so a search costs no extra round trip."""
    if connection is None or connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "DO $$ BEGIN"
            f" PERFORM set_config('hnsw.ef_search', '{int(EF_SEARCH)}', false);"
            " PERFORM set_config('hnsw.iterative_scan', 'relaxed_order', false);"
            " EXCEPTION WHEN OTHERS THEN NULL; END $$"
        )


@dataclass(frozen=True)
class Scope:
    workspace_id: UUID
    dataset_ids: Sequence[UUID]
    document_ids: Sequence[UUID] | None = None

    def where(self) -> tuple[str, list]:
        sql = (
            "s.workspace_id = %s AND s.dataset_id = ANY(%s) AND s.enabled AND s.searchable"
            " AND d.enabled AND NOT d.archived AND d.indexing_status = 'completed'"
        )
        params: list = [self.workspace_id, list(self.dataset_ids)]
        if self.document_ids is not None:
            sql += " AND s.document_id = ANY(%s)"
            params.append(list(self.document_ids))
        return sql, params


_FROM = "datasets_segment s JOIN datasets_document d ON d.id = s.document_id"


def vector_literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


def nearest(scope: Scope, vector: Sequence[float], limit: int) -> dict[UUID, float]:
    """{segment id: 1 − cosine distance} of the `limit` nearest segments of this width,
    through the width's HNSW index when the planner finds it worth it (a large dataset),
    else exactly. Iterative scanning keeps going when filters drop index hits."""
    predicate, distance = distance_sql(len(vector))
    where, params = scope.where()
    sql = (
        f"WITH hits AS MATERIALIZED (SELECT s.id, {distance} AS distance FROM {_FROM}"  # noqa: S608 - ints and fixed SQL
        f" WHERE {predicate} AND {where} ORDER BY distance LIMIT %s)"
        " SELECT id, distance FROM hits ORDER BY distance"
    )
    arguments = [vector_literal(vector), *params, limit]
    if 2 * limit <= EF_SEARCH:  # the session's setting (set_search_options) will do
        with connection.cursor() as cursor:
            cursor.execute(sql, arguments)
            rows = cursor.fetchall()
    else:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(2 * limit)])
            cursor.execute(sql, arguments)
            rows = cursor.fetchall()
    return {row[0]: 1.0 - float(row[1]) for row in rows}


def similarity(scope: Scope, vector: Sequence[float], ids: Sequence[UUID]) -> dict[UUID, float]:
    """1 − cosine distance for the given segments that have an embedding of this width."""
    if not ids:
        return {}
    predicate, distance = distance_sql(len(vector))
    where, params = scope.where()
    sql = (
        f"SELECT s.id, {distance} FROM {_FROM} WHERE {predicate} AND {where}"  # noqa: S608
        " AND s.id = ANY(%s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [vector_literal(vector), *params, list(ids)])
        return {row[0]: 1.0 - float(row[1]) for row in cursor.fetchall()}


@dataclass(frozen=True)
class TextMatch:
    coverage: float  # share of the query's terms the chunk holds, 0..1
    rank: float  # ts_rank_cd against any of the terms, length-normalised


def _coverage_sql(terms: list[str]) -> tuple[str, list]:
    parts = " + ".join("(s.search_vector @@ %s::tsquery)::int" for _ in terms)
    return f"({parts})::float / {len(terms)}", list(terms)


def _any_of(terms: list[str], at_least: int) -> str:
    return " | ".join("(" + " & ".join(group) + ")" for group in combinations(terms, at_least))


def text_matches(scope: Scope, terms: list[str], limit: int) -> dict[UUID, TextMatch]:
    """The best `limit` chunks by the share of query terms they hold, then by rank.

    Ranking every chunk that holds any term would read most of a large corpus for a query
    with a common word in it, so we ask first for chunks with all n terms, then n − 1 …,
    and stop at the first level with enough: the GIN index answers each level. A level
    ranks at most MAX_RANKED of its chunks; only the weakest matches are left unranked."""
    if not terms:
        return {}
    where, params = scope.where()
    coverage, coverage_params = _coverage_sql(terms)
    any_term = " | ".join(terms)
    found: dict[UUID, TextMatch] = {}
    with connection.cursor() as cursor:
        for at_least in range(len(terms), 0, -1):
            if at_least > 1 and comb(len(terms), at_least) > MAX_TERM_COMBINATIONS:
                continue
            sql = (
                f"SELECT id, coverage, rank FROM (SELECT s.id, {coverage} AS coverage,"  # noqa: S608 - placeholders only
                " ts_rank_cd(s.search_vector, %s::tsquery, 1) AS rank"
                f" FROM {_FROM} WHERE s.search_vector @@ %s::tsquery AND {where}"
                " AND NOT (s.id = ANY(%s)) LIMIT %s) level"
                " ORDER BY coverage DESC, rank DESC LIMIT %s"
            )
            arguments = [*coverage_params, any_term, _any_of(terms, at_least), *params]
            cursor.execute(sql, [*arguments, list(found), MAX_RANKED, limit - len(found)])
            found.update((row[0], TextMatch(float(row[1]), float(row[2]))) for row in cursor)
            if len(found) >= limit:
                break
    return dict(sorted(found.items(), key=lambda item: (-item[1].coverage, -item[1].rank)))


def text_scores(scope: Scope, terms: list[str], ids: Sequence[UUID]) -> dict[UUID, TextMatch]:
    """Coverage and rank for the given segments (those that match no term are left out)."""
    if not terms or not ids:
        return {}
    where, params = scope.where()
    coverage, coverage_params = _coverage_sql(terms)
    any_term = " | ".join(terms)
    sql = (
        f"SELECT s.id, {coverage}, ts_rank_cd(s.search_vector, %s::tsquery, 1)"  # noqa: S608
        f" FROM {_FROM} WHERE s.search_vector @@ %s::tsquery AND {where} AND s.id = ANY(%s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*coverage_params, any_term, any_term, *params, list(ids)])
        return {row[0]: TextMatch(float(row[1]), float(row[2])) for row in cursor.fetchall()}
