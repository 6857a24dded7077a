"""Retrieval for chat apps and text generators: the knowledge bases an app attaches, read
from Dify's `dataset_configs`, searched for the user's query; the results come back as the
`retriever_resources` Dify puts in message_end's metadata (the citations).

`dataset_configs` is Dify's shape: {retrieval_model: "multiple" | "single", top_k,
score_threshold_enabled, score_threshold, reranking_enable, reranking_mode,
reranking_model, weights, datasets: {datasets: [{dataset: {enabled, id}}]}}.

- "multiple": every attached knowledge base is searched with its own retrieval setting
  (economy ones by full text); the results are merged, reranked by the app's rerank model
  when it has one (else by score), cut at the app's threshold and top_k.
- "single": Dify lets an LLM pick one knowledge base by its description. We pick without
  a model call: each is searched with its own setting and the one whose best chunk
  scores highest answers alone."""

from __future__ import annotations

import uuid

from asgiref.sync import async_to_sync
from django.db.models import F

from apps.datasets.models import Dataset, DatasetQuery, Segment
from apps.datasets.retrieval import (
    DEFAULT_TOP_K,
    InvalidRetrievalModel,
    RetrievalSettings,
    RetrievedRecord,
    retrieve,
)
from apps.providers.instance import ModelInstance


def attached_dataset_ids(dataset_configs: dict) -> list[uuid.UUID]:
    """The enabled knowledge bases in a `dataset_configs`, in order; bad ids are skipped."""
    entries = ((dataset_configs or {}).get("datasets") or {}).get("datasets") or []
    ids = []
    for entry in entries:
        dataset = (entry or {}).get("dataset") if isinstance(entry, dict) else None
        if not isinstance(dataset, dict) or dataset.get("enabled") is False:
            continue
        try:
            ids.append(uuid.UUID(str(dataset.get("id"))))
        except ValueError:
            continue
    return list(dict.fromkeys(ids))


def retrieve_for_app(
    *,
    workspace,
    dataset_configs: dict,
    query: str,
    retriever_from: str = "api",
    app_id=None,
    user=None,
) -> list[dict]:
    """`retriever_resources` for `query` from the app's knowledge bases, best first
    (empty when none is attached or nothing matches). Knowledge bases of another workspace
    are never searched. Each returned chunk's hit_count goes up by one, and the query is
    recorded in each searched knowledge base's history."""
    config = dataset_configs or {}
    ids = attached_dataset_ids(config)
    query = (query or "").strip()
    if not ids or not query:
        return []
    found = {d.pk: d for d in Dataset.objects.for_workspace(workspace).filter(pk__in=ids)}
    datasets = [found[i] for i in ids if i in found]
    if not datasets:
        return []
    app_settings = _app_settings(config)
    per_dataset = {}
    for dataset in datasets:
        own = RetrievalSettings.parse(dataset.retrieval_model)
        model = dict(dataset.retrieval_model or {})
        model.update(
            top_k=app_settings.top_k,
            score_threshold_enabled=False,
            reranking_enable=False,
            reranking_mode=own.fusion if own.search_method == "hybrid_search" else None,
        )
        per_dataset[dataset.pk] = retrieve(
            workspace=workspace, datasets=[dataset], query=query, retrieval_model=model
        )
    if config.get("retrieval_model") == "single":
        best = max(per_dataset.values(), key=lambda rs: rs[0].score if rs else -1.0)
        records = best
    else:
        records = [r for rs in per_dataset.values() for r in rs]
        if app_settings.rerank:
            records = _rerank(workspace, app_settings, query, records)
        else:
            records.sort(key=lambda r: r.score, reverse=True)
    if app_settings.score_threshold is not None:
        records = [r for r in records if r.score >= app_settings.score_threshold]
    records = records[: app_settings.top_k]
    _count_hits(records)
    DatasetQuery.objects.bulk_create(
        DatasetQuery(
            workspace_id=dataset.workspace_id,
            dataset=dataset,
            content=query,
            source=DatasetQuery.Source.APP,
            created_by=user,
        )
        for dataset in datasets
    )
    return [_resource(position, r, retriever_from) for position, r in enumerate(records, 1)]


def _app_settings(config: dict) -> RetrievalSettings:
    """The app-level top_k, threshold and rerank model. A rerank model applies when
    reranking is on and the mode is not weighted_score (Dify's multiple-retrieval rule)."""
    rerank_on = bool(config.get("reranking_enable")) and (
        config.get("reranking_mode") != "weighted_score"
    )
    fields = {
        "search_method": "semantic_search",
        "top_k": config.get("top_k") or DEFAULT_TOP_K,
        "score_threshold_enabled": config.get("score_threshold_enabled", False),
        "score_threshold": config.get("score_threshold"),
        "reranking_enable": rerank_on,
        "reranking_model": config.get("reranking_model"),
    }
    try:
        return RetrievalSettings.parse(fields)
    except InvalidRetrievalModel as exc:
        raise InvalidRetrievalModel(f"The app's knowledge settings are wrong: {exc}") from exc


def _rerank(workspace, settings: RetrievalSettings, query: str, records: list) -> list:
    if not records:
        return records
    instance = ModelInstance(
        workspace=workspace,
        provider=settings.rerank.provider,
        model=settings.rerank.model,
        model_type="rerank",
        source="knowledge",
    )
    result = async_to_sync(instance.invoke_rerank)(query, [r.content for r in records])
    reranked = []
    for item in result.items:
        record = records[item.index]
        record.score = float(item.score)
        reranked.append(record)
    reranked.sort(key=lambda r: r.score, reverse=True)
    return reranked


def _count_hits(records: list[RetrievedRecord]) -> None:
    ids = [r.segment.pk for r in records]
    if ids:
        Segment.objects.filter(pk__in=ids).update(hit_count=F("hit_count") + 1)
    for record in records:
        record.segment.hit_count += 1


def _resource(position: int, record: RetrievedRecord, retriever_from: str) -> dict:
    """One of Dify's `retriever_resources` items."""
    segment, document, dataset = record.segment, record.document, record.dataset
    return {
        "position": position,
        "dataset_id": str(dataset.pk),
        "dataset_name": dataset.name,
        "document_id": str(document.pk),
        "document_name": document.name,
        "data_source_type": document.data_source_type,
        "segment_id": str(segment.pk),
        "retriever_from": retriever_from,
        "score": round(record.score, 6),
        "hit_count": segment.hit_count,
        "word_count": segment.word_count,
        "segment_position": segment.position,
        "index_node_hash": segment.content_hash,
        "content": record.content,
        "page": None,
    }
