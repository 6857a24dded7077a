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
from django.db.models.expressions import RawSQL

from apps.datasets.models import Segment
from apps.datasets.vector_index import distance_sql

# HNSW candidate list size. On 100k chunks of the Python manual (bench_retrieval) pgvector's
# default of 40 finds ~0.80 of the exact top 10, 100 ~0.92, 200 ~0.97: we take 200, at a
# few milliseconds more a query.
EF_SEARCH = 200
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


@dataclass(frozen=True)
class TextMatch:
    coverage: float  # share of the query's terms the chunk holds, 0..1
    rank: float  # ts_rank_cd against any of the terms, length-normalised


def _coverage_sql(terms: list[str], column: str = "s.search_vector") -> tuple[str, list]:
    parts = " + ".join(f"({column} @@ %s::tsquery)::int" for _ in terms)
    return f"({parts})::float / {len(terms)}", list(terms)


def _any_of(terms: list[str], at_least: int) -> str:
    return " | ".join("(" + " & ".join(group) + ")" for group in combinations(terms, at_least))


def text_matches(
    scope: Scope, terms: list[str], limit: int, enough: int | None = None
) -> dict[UUID, TextMatch]:
    """Up to `limit` chunks, best first by the share of query terms they hold, then by
    rank; the search stops relaxing once it has `enough` (default: limit).

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
            if len(found) >= (enough or limit):
                break
    return dict(sorted(found.items(), key=lambda item: (-item[1].coverage, -item[1].rank)))


def score_annotations(vector_groups, terms: list[str]) -> dict:
    """ORM annotations scoring segments on both searches, for hybrid search's union:
    `similarity` (1 − cosine distance, for segments of a group's datasets and width) and
    `coverage` / `text_rank` (0 when no term matches)."""
    table = Segment._meta.db_table
    annotations = {}
    if vector_groups:
        cases, params = [], []
        for group, vector in vector_groups:
            predicate, distance = distance_sql(len(vector))
            cases.append(
                f"WHEN {table}.{predicate} AND {table}.dataset_id = ANY(%s) THEN 1 - {distance}"
            )
            params += [list(group.dataset_ids), vector_literal(vector)]
        # Values are parameters; the SQL around them is ours (widths are ints).
        annotations["similarity"] = RawSQL(f"CASE {' '.join(cases)} END", params)  # noqa: S611
    if terms:
        annotations["coverage"] = RawSQL(*_coverage_sql(terms, f"{table}.search_vector"))  # noqa: S611
        annotations["text_rank"] = RawSQL(  # noqa: S611
            f"ts_rank_cd({table}.search_vector, %s::tsquery, 1)", [" | ".join(terms)]
        )
    return annotations
