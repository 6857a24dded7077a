"""Retrieval: find the chunks of one or more knowledge bases that answer a query.

`retrieval_model` is Dify's shape (`search_method`, `top_k`, `score_threshold_enabled`,
`score_threshold`, `reranking_enable`, `reranking_mode`, `reranking_model`, `weights`).
Scores are 0..1, higher is better:

- semantic: 1 − cosine distance between the query's and the chunk's embeddings, the query
  embedded with the knowledge base's own embedding model;
- full text: the share of the query's words (stemmed, stop words dropped) the chunk holds,
  times 0.75 + 0.25 × its rank relative to the best candidate; so a chunk with every word
  scores 0.75 to 1, one with half of them at most 0.5;
- hybrid: `vector_weight × semantic + keyword_weight × full text` over the union of both
  candidate lists (default 0.7 / 0.3), or, with `reranking_mode`
  "reciprocal_rank_fusion", Σ weight / (60 + rank) scaled so that first in both lists is 1;
- a rerank model, when asked for, replaces the score with its relevance score.

Economy knowledge bases have no embeddings: they are searched by full text whatever the
method, with the full-text score. In parent-child documents the children are matched and
the record is the parent (its content is the context), with the matched children listed."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from asgiref.sync import SyncToAsync, async_to_sync

from apps.core.errors import DomainError, NotFound
from apps.datasets import search
from apps.datasets.models import Dataset, IndexingTechnique, Segment
from apps.datasets.text_search import query_terms
from apps.providers.instance import ModelInstance, ModelRef
from apps.providers.models import DefaultModel

SEARCH_METHODS = ("semantic_search", "full_text_search", "hybrid_search", "keyword_search")
RERANKING_MODES = ("weighted_score", "reranking_model", "reciprocal_rank_fusion")
DEFAULT_TOP_K = 4  # Dify's server default
MAX_TOP_K = 100
DEFAULT_WEIGHTS = (0.7, 0.3)  # vector, keyword: Dify's UI default
RRF_K = 60


class InvalidRetrievalModel(DomainError):
    code = "invalid_param"  # Dify's code for a bad request field


@dataclass(frozen=True)
class RetrievalSettings:
    search_method: str = "semantic_search"
    top_k: int = DEFAULT_TOP_K
    score_threshold: float | None = None
    fusion: str = "weighted_score"  # hybrid only: weighted_score or reciprocal_rank_fusion
    vector_weight: float = DEFAULT_WEIGHTS[0]
    keyword_weight: float = DEFAULT_WEIGHTS[1]
    rerank: ModelRef | None = None

    @property
    def uses_vectors(self) -> bool:
        return self.search_method in ("semantic_search", "hybrid_search")

    @property
    def uses_text(self) -> bool:
        return self.search_method != "semantic_search"

    @classmethod
    def parse(cls, data: dict | None) -> RetrievalSettings:
        """Read Dify's retrieval_model; a missing field takes Dify's default, a wrong one
        is an InvalidRetrievalModel saying which and why."""
        data = data or {}
        if not isinstance(data, dict):
            raise InvalidRetrievalModel("retrieval_model must be an object.")
        method = data.get("search_method") or "semantic_search"
        if method not in SEARCH_METHODS:
            raise InvalidRetrievalModel(
                f"search_method must be one of {', '.join(SEARCH_METHODS)}, not {method!r}."
            )
        top_k = data.get("top_k")
        if top_k is None:
            top_k = DEFAULT_TOP_K
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
            raise InvalidRetrievalModel(f"top_k must be a whole number from 1 to {MAX_TOP_K}.")
        threshold = None
        if data.get("score_threshold_enabled"):
            threshold = _number(data.get("score_threshold") or 0, "score_threshold")
            if not 0 <= threshold <= 1:
                raise InvalidRetrievalModel("score_threshold must be between 0 and 1.")
        vector_weight, keyword_weight = _weights(data.get("weights"))
        mode = data.get("reranking_mode") or None
        if mode is not None and mode not in RERANKING_MODES:
            raise InvalidRetrievalModel(
                f"reranking_mode must be one of {', '.join(RERANKING_MODES)}, not {mode!r}."
            )
        rerank = _rerank_model(data.get("reranking_model"))
        # As Dify: a rerank model runs when reranking is on and, for hybrid search, the mode
        # is not weighted_score (the mode defaults to reranking_model). Hybrid search without
        # a model fuses by weights (or RRF when asked).
        wants_model = bool(data.get("reranking_enable")) and (
            method != "hybrid_search" or mode in (None, "reranking_model")
        )
        if wants_model and rerank is None:
            raise InvalidRetrievalModel(
                "Reranking is on but no rerank model is chosen: set reranking_model's "
                "reranking_provider_name and reranking_model_name."
            )
        return cls(
            search_method="full_text_search" if method == "keyword_search" else method,
            top_k=top_k,
            score_threshold=threshold,
            fusion=mode if mode == "reciprocal_rank_fusion" else "weighted_score",
            vector_weight=vector_weight,
            keyword_weight=keyword_weight,
            rerank=rerank if wants_model else None,
        )


def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRetrievalModel(f"{name} must be a number.")
    return float(value)


def _weights(weights) -> tuple[float, float]:
    if not weights:
        return DEFAULT_WEIGHTS
    if not isinstance(weights, dict):
        raise InvalidRetrievalModel("weights must be an object.")
    vector = (weights.get("vector_setting") or {}).get("vector_weight")
    keyword = (weights.get("keyword_setting") or {}).get("keyword_weight")
    vector = DEFAULT_WEIGHTS[0] if vector is None else _number(vector, "vector_weight")
    keyword = DEFAULT_WEIGHTS[1] if keyword is None else _number(keyword, "keyword_weight")
    if vector < 0 or keyword < 0 or vector + keyword <= 0:
        raise InvalidRetrievalModel("vector_weight and keyword_weight must be ≥ 0, not both 0.")
    return vector, keyword


def _rerank_model(value) -> ModelRef | None:
    if not isinstance(value, dict):
        return None
    provider = (value.get("reranking_provider_name") or "").strip()
    model = (value.get("reranking_model_name") or "").strip()
    # Dify names plugin providers "langgenius/jina/jina"; ours is the last part.
    provider = provider.rsplit("/", 1)[-1]
    return ModelRef(provider, model) if provider and model else None


# --- Results ---------------------------------------------------------------------------


@dataclass
class ChildHit:
    segment: Segment
    score: float


@dataclass
class RetrievedRecord:
    """One result: `segment` (with `.document` and `.dataset` loaded) is what is shown and
    given to a model as context; for parent-child documents it is the parent and
    `child_chunks` are the children that matched."""

    segment: Segment
    score: float
    child_chunks: list[ChildHit] = field(default_factory=list)
    vector_score: float | None = None
    keyword_score: float | None = None

    @property
    def document(self):
        return self.segment.document

    @property
    def dataset(self) -> Dataset:
        return self.segment.dataset

    @property
    def content(self) -> str:
        """The context text: the chunk (the parent for child matches); a Q&A chunk as
        question and answer."""
        if self.segment.answer:
            return f"question:{self.segment.content} answer:{self.segment.answer}"
        return self.segment.content


# --- Retrieval -------------------------------------------------------------------------


@dataclass
class _Candidate:
    segment_id: uuid.UUID
    dataset_id: uuid.UUID
    vector_score: float | None = None
    text: search.TextMatch | None = None
    vector_rank: int | None = None
    text_rank: int | None = None
    keyword_score: float = 0.0
    score: float = 0.0


def retrieve(
    *,
    workspace,
    datasets: Iterable[Dataset],
    query: str,
    retrieval_model: dict | None = None,
    document_ids: Sequence | None = None,
    source: str = "knowledge",
) -> list[RetrievedRecord]:
    """The best `top_k` chunks of these datasets for `query`, best first.

    With no `retrieval_model`, a single dataset uses its own setting (Dify's default
    when it has none: semantic search, top 4). `document_ids` keeps to those documents.
    Model errors (embedding, rerank) surface as the provider's InvokeError."""
    datasets = list(datasets)
    for dataset in datasets:
        if dataset.workspace_id != getattr(workspace, "pk", workspace):
            raise NotFound("Knowledge base not found.")
    query = (query or "").strip()
    if not query:
        raise InvalidRetrievalModel("Type a query to search for.")
    if not retrieval_model and len(datasets) == 1:
        retrieval_model = datasets[0].retrieval_model
    settings = RetrievalSettings.parse(retrieval_model)
    if not datasets:
        return []
    scope = search.Scope(
        workspace_id=datasets[0].workspace_id,
        dataset_ids=[d.pk for d in datasets],
        document_ids=_uuids(document_ids) if document_ids is not None else None,
    )
    found, vector_groups, terms = _candidates(workspace, datasets, scope, query, settings, source)
    if settings.search_method != "hybrid_search":
        vector_groups, terms = [], []  # no cross-scoring needed
    segments = _load(workspace, list(found), {d.pk: d for d in datasets}, vector_groups, terms)
    candidates = [c for c in found.values() if c.segment_id in segments]
    for candidate in candidates:
        segment = segments[candidate.segment_id]
        candidate.dataset_id = segment.dataset_id
        # Hybrid: a chunk only one search found still has a score on the other, so the
        # weights compare like with like.
        if candidate.vector_score is None:
            candidate.vector_score = getattr(segment, "similarity", None)
        if candidate.text is None and getattr(segment, "coverage", None):
            candidate.text = search.TextMatch(segment.coverage, segment.text_rank)
    economy = {d.pk for d in datasets if d.indexing_technique == IndexingTechnique.ECONOMY}
    _score(candidates, settings, economy)
    ranked = sorted(candidates, key=lambda c: c.score, reverse=True)
    if settings.rerank:
        ranked = _rerank(workspace, settings, query, ranked, segments, source)
    records = _group_by_parent(ranked, segments)
    if settings.score_threshold is not None:
        records = [r for r in records if r.score >= settings.score_threshold]
    return records[: settings.top_k]


def _uuids(values: Sequence) -> list[uuid.UUID]:
    try:
        return [v if isinstance(v, uuid.UUID) else uuid.UUID(str(v)) for v in values]
    except ValueError as exc:
        raise InvalidRetrievalModel("document_ids must be document ids.") from exc


def _pool_size(settings: RetrievalSettings) -> int:
    """Candidates per list: more than top_k, so a rerank, the other list in a hybrid, and
    several children of one parent still leave top_k records."""
    return min(max(2 * settings.top_k, 10), 200)


def _candidates(workspace, datasets, scope, query, settings, source):
    """{segment id: candidate} from each search the method needs, plus the (scope, query
    vector) of each embedding model and the query's full-text terms."""
    limit = _pool_size(settings)
    # Weaker full-text matches than top_k chunks holding more of the words only matter
    # to a rerank model.
    enough = limit if settings.rerank else settings.top_k
    found: dict[uuid.UUID, _Candidate] = {}

    def add(segment_id) -> _Candidate:
        if segment_id not in found:
            found[segment_id] = _Candidate(segment_id=segment_id, dataset_id=None)
        return found[segment_id]

    # The query embeddings are on their way while the full-text search runs.
    embeddings = []  # (scope, vector or a wait for it) per embedding model
    high_quality = [d for d in datasets if d.indexing_technique == IndexingTechnique.HIGH_QUALITY]
    if settings.uses_vectors and high_quality:
        by_model = defaultdict(list)
        for dataset in high_quality:
            model = _embedding_model(workspace, dataset)
            if model is not None:
                by_model[model].append(dataset.pk)
        for model, dataset_ids in by_model.items():
            group = search.Scope(scope.workspace_id, dataset_ids, scope.document_ids)
            embeddings.append((group, _start_embedding(workspace, model, query, source)))
    text_datasets = [
        d.pk
        for d in datasets
        if settings.uses_text or d.indexing_technique == IndexingTechnique.ECONOMY
    ]
    terms = query_terms(query) if text_datasets else []
    if text_datasets and terms:
        text_scope = search.Scope(scope.workspace_id, text_datasets, scope.document_ids)
        for rank, (segment_id, match) in enumerate(
            search.text_matches(text_scope, terms, limit, enough).items(), 1
        ):
            candidate = add(segment_id)
            candidate.text, candidate.text_rank = match, rank
    vector_groups = []
    for group, wait in embeddings:
        vector = wait()
        vector_groups.append((group, vector))
        for rank, (segment_id, score) in enumerate(search.nearest(group, vector, limit).items(), 1):
            candidate = add(segment_id)
            candidate.vector_score, candidate.vector_rank = score, rank
    return found, vector_groups, terms


def _embedding_model(workspace, dataset: Dataset) -> ModelRef | None:
    """The model the dataset's chunks were embedded with: its setting, else the one its
    segments record, else the workspace's default embedding model."""
    if dataset.embedding_model_provider and dataset.embedding_model:
        return ModelRef(dataset.embedding_model_provider, dataset.embedding_model)
    recorded = (
        Segment.objects.filter(dataset=dataset, embedding_dim__isnull=False)
        .exclude(embedding_model="")
        .order_by()
        .values_list("embedding_model", flat=True)
        .first()
    )
    if recorded:
        return ModelRef.parse(recorded)
    default = (
        DefaultModel.objects.for_workspace(workspace).filter(model_type="text-embedding").first()
    )
    return ModelRef(default.provider, default.model) if default else None


def _start_embedding(
    workspace, model: ModelRef, query: str, source: str
) -> Callable[[], list[float]]:
    """Start embedding the query and return a function that waits for the vector.

    Called from a thread an event loop handed sync work to (a view under the ASGI server,
    `offload` from the chat pipeline), the call runs on that loop at once, so the database
    work that follows overlaps it. Elsewhere (a command, an actor) it runs when waited for."""
    instance = ModelInstance(
        workspace=workspace,
        provider=model.provider,
        model=model.model,
        model_type="text-embedding",
        source=source,
    )

    async def embed() -> list[float]:
        result = await instance.invoke_text_embedding([query], input_type="query")
        return result.vectors[0]

    loop = _calling_loop()
    if loop is None:
        return lambda: async_to_sync(embed)()
    return asyncio.run_coroutine_threadsafe(embed(), loop).result


def _calling_loop() -> asyncio.AbstractEventLoop | None:
    """The running event loop that handed this thread its work, if any (asgiref records
    it for async_to_sync; we read the same record)."""
    local = SyncToAsync.threadlocal
    loop = getattr(local, "main_event_loop", None)
    if loop is None or getattr(local, "main_event_loop_pid", None) != os.getpid():
        return None
    return loop if loop.is_running() else None


def _score(candidates: Iterable[_Candidate], settings: RetrievalSettings, economy: set) -> None:
    candidates = list(candidates)
    best_rank = max((c.text.rank for c in candidates if c.text), default=0.0)
    for c in candidates:
        keyword = 0.0
        if c.text:
            density = c.text.rank / best_rank if best_rank else 1.0
            keyword = c.text.coverage * (0.75 + 0.25 * density)
        c.keyword_score = keyword
        if c.dataset_id in economy or settings.search_method == "full_text_search":
            c.score = keyword
        elif settings.search_method == "semantic_search":
            c.score = c.vector_score if c.vector_score is not None else keyword
        elif settings.fusion == "reciprocal_rank_fusion":
            best = (settings.vector_weight + settings.keyword_weight) / (RRF_K + 1)
            fused = 0.0
            if c.vector_rank:
                fused += settings.vector_weight / (RRF_K + c.vector_rank)
            if c.text_rank:
                fused += settings.keyword_weight / (RRF_K + c.text_rank)
            c.score = fused / best
        else:
            vector = max(c.vector_score or 0.0, 0.0)
            total = settings.vector_weight + settings.keyword_weight
            c.score = (settings.vector_weight * vector + settings.keyword_weight * keyword) / total


_DOCUMENT_FIELDS_NOT_SHOWN = (
    "source_url",
    "file",
    "file_size",
    "mime_type",
    "batch",
    "created_by",
    "process_rule",
    "doc_form",
    "doc_language",
    "error",
    "word_count",
    "tokens",
    "completed_segments",
    "total_segments",
    "claimed_at",
    "attempts",
    "processing_started_at",
    "parsing_completed_at",
    "cleaning_completed_at",
    "splitting_completed_at",
    "completed_at",
    "paused_at",
    "stopped_at",
    "updated_at",
)


def _load(workspace, ids: list, datasets: dict, vector_groups, terms) -> dict[uuid.UUID, Segment]:
    """The candidate segments and the parents of any children among them, with their
    document and (already loaded) dataset. With `vector_groups` and `terms` (hybrid) each
    also gets its `similarity` to the query vector and its full-text `coverage` and
    `text_rank`, in the same round trip."""
    if not ids:
        return {}
    rows = (
        Segment.objects.for_workspace(workspace)
        .select_related("document")
        # The embedding and tsvector are large and not shown; of the document, what a
        # result shows (anything else is fetched if asked for).
        .defer("embedding", "search_vector")
        .defer(*(f"document__{name}" for name in _DOCUMENT_FIELDS_NOT_SHOWN))
    )
    scored = rows.annotate(**search.score_annotations(vector_groups, terms))
    segments = {s.pk: s for s in scored.filter(pk__in=ids)}
    parent_ids = {s.parent_id for s in segments.values() if s.parent_id} - set(segments)
    if parent_ids:
        segments.update({s.pk: s for s in rows.filter(pk__in=parent_ids)})
    for segment in segments.values():
        segment.dataset = datasets[segment.dataset_id]
    return segments


def _rerank(workspace, settings, query, ranked, segments, source) -> list[_Candidate]:
    """Order the candidates by the rerank model's relevance; its score becomes theirs."""
    if not ranked:
        return ranked
    instance = ModelInstance(
        workspace=workspace,
        provider=settings.rerank.provider,
        model=settings.rerank.model,
        model_type="rerank",
        source=source,
    )
    texts = [_rerank_text(segments[c.segment_id]) for c in ranked]
    result = async_to_sync(instance.invoke_rerank)(query, texts)
    reranked = []
    for item in result.items:
        candidate = ranked[item.index]
        candidate.score = float(item.score)
        reranked.append(candidate)
    reranked.sort(key=lambda c: c.score, reverse=True)
    return reranked


def _rerank_text(segment: Segment) -> str:
    return f"{segment.content}\n{segment.answer}" if segment.answer else segment.content


def _group_by_parent(ranked: list[_Candidate], segments: dict) -> list[RetrievedRecord]:
    """One record per chunk shown: matched children gather under their parent, which
    takes the best child's score. Children of a disabled parent are not shown."""
    records: dict[uuid.UUID, RetrievedRecord] = {}
    for candidate in ranked:
        segment = segments[candidate.segment_id]
        shown = segment
        if segment.parent_id:
            shown = segments.get(segment.parent_id)
            if shown is None or not shown.enabled:
                continue
        record = records.get(shown.pk)
        if record is None:
            record = records[shown.pk] = RetrievedRecord(
                segment=shown,
                score=candidate.score,
                vector_score=candidate.vector_score,
                keyword_score=candidate.keyword_score,
            )
        if shown is not segment:
            record.child_chunks.append(ChildHit(segment=segment, score=candidate.score))
    return list(records.values())
