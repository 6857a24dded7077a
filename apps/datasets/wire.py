"""The Knowledge API's JSON shapes: Dify's field names and status values, built from our
rows. Times are Unix seconds, as Dify sends them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apps.datasets.models import Dataset, Document, IndexingStatus, Segment
from apps.datasets.selectors import Page


def ts(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value else None


def fts(value: datetime | None) -> float | None:
    return value.timestamp() if value else None


def page_body(page: Page, items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "data": items,
        "has_more": page.has_more,
        "limit": page.limit,
        "total": page.total,
        "page": page.page,
        **extra,
    }


def dataset_body(dataset: Dataset) -> dict[str, Any]:
    document_count = getattr(dataset, "document_count", None)
    if document_count is None:
        document_count = dataset.documents.count()
    return {
        "id": str(dataset.id),
        "name": dataset.name,
        "description": dataset.description or None,
        "provider": "vendor",
        "permission": dataset.permission,
        "data_source_type": "upload_file" if document_count else None,
        "indexing_technique": dataset.indexing_technique,
        "app_count": 0,
        "document_count": document_count,
        "word_count": getattr(dataset, "word_count", 0) or 0,
        "created_by": str(dataset.created_by_id) if dataset.created_by_id else None,
        "created_at": ts(dataset.created_at),
        "updated_by": None,
        "updated_at": ts(dataset.updated_at),
        "embedding_model": dataset.embedding_model or None,
        "embedding_model_provider": dataset.embedding_model_provider or None,
        "embedding_available": True,
        "retrieval_model_dict": dataset.retrieval_model,
        "tags": [],
        "doc_form": dataset.doc_form,
        "external_knowledge_info": {
            "external_knowledge_id": None,
            "external_knowledge_api_id": None,
            "external_knowledge_api_name": None,
            "external_knowledge_api_endpoint": None,
        },
        "external_retrieval_model": None,
        "doc_metadata": [],
        "built_in_field_enabled": False,
        "partial_member_list": [str(pk) for pk in dataset.members.values_list("pk", flat=True)]
        if dataset.permission == "partial_members"
        else [],
    }


def display_status(document: Document) -> str:
    """Dify's display_status: one word for the list, from status, enabled and archived."""
    status = document.indexing_status
    if status == IndexingStatus.WAITING:
        return "queuing"
    if status in (IndexingStatus.PAUSED, IndexingStatus.ERROR):
        return status
    if status != IndexingStatus.COMPLETED:
        return "indexing"
    if document.archived:
        return "archived"
    return "available" if document.enabled else "disabled"


def document_body(document: Document) -> dict[str, Any]:
    source_info: dict[str, Any] = {}
    if document.data_source_type == "upload_file":
        source_info = {"upload_file_id": str(document.id)}
    elif document.data_source_type == "url":
        source_info = {"url": document.source_url}
    return {
        "id": str(document.id),
        "position": document.position,
        "data_source_type": document.data_source_type,
        "data_source_info": source_info,
        "data_source_detail_dict": {},
        "dataset_process_rule_id": None,
        "name": document.name,
        "created_from": "api",
        "created_by": str(document.created_by_id) if document.created_by_id else None,
        "created_at": ts(document.created_at),
        "tokens": document.tokens,
        "indexing_status": document.indexing_status,
        "error": document.error or None,
        "enabled": document.enabled,
        "disabled_at": None,
        "disabled_by": None,
        "archived": document.archived,
        "display_status": display_status(document),
        "word_count": document.word_count,
        "hit_count": 0,
        "doc_form": document.doc_form,
        "doc_metadata": [],
    }


def indexing_status_body(document: Document) -> dict[str, Any]:
    return {
        "id": str(document.id),
        "indexing_status": document.indexing_status,
        "processing_started_at": fts(document.processing_started_at),
        "parsing_completed_at": fts(document.parsing_completed_at),
        "cleaning_completed_at": fts(document.cleaning_completed_at),
        "splitting_completed_at": fts(document.splitting_completed_at),
        "completed_at": fts(document.completed_at),
        "paused_at": fts(document.paused_at),
        "error": document.error or None,
        "stopped_at": fts(document.stopped_at),
        "completed_segments": document.completed_segments,
        "total_segments": document.total_segments,
    }


def child_chunk_body(child: Segment) -> dict[str, Any]:
    return {
        "id": str(child.id),
        "segment_id": str(child.parent_id),
        "content": child.content,
        "position": child.position,
        "word_count": child.word_count,
        "type": "automatic",
        "created_at": ts(child.created_at),
        "updated_at": ts(child.updated_at),
    }


def segment_body(segment: Segment, *, with_children: bool = True) -> dict[str, Any]:
    body = {
        "id": str(segment.id),
        "position": segment.position,
        "document_id": str(segment.document_id),
        "content": segment.content,
        "sign_content": segment.content,
        "answer": segment.answer or None,
        "word_count": segment.word_count,
        "tokens": segment.tokens,
        "keywords": segment.keywords or [],
        "index_node_id": str(segment.id),
        "index_node_hash": segment.content_hash,
        "hit_count": segment.hit_count,
        "enabled": segment.enabled,
        "disabled_at": None,
        "disabled_by": None,
        "status": "completed",
        "created_by": None,
        "created_at": ts(segment.created_at),
        "updated_at": ts(segment.updated_at),
        "updated_by": None,
        "indexing_at": ts(segment.created_at),
        "completed_at": ts(segment.updated_at),
        "error": None,
        "stopped_at": None,
        "child_chunks": [],
    }
    if with_children and segment.parent_id is None:
        body["child_chunks"] = [child_chunk_body(c) for c in segment.children.order_by("position")]
    return body


def retrieve_record_body(record) -> dict[str, Any]:
    """One item of `records` in Dify's `/retrieve` (hit-testing) answer: the segment as the
    segment endpoints show it, with its document, and the child chunks that matched.
    `record` is an apps.datasets.retrieval.RetrievedRecord."""
    segment = segment_body(record.segment, with_children=False)
    del segment["child_chunks"]  # the matched ones are listed beside it, with scores
    document = record.segment.document
    segment["document"] = {
        "id": str(document.id),
        "data_source_type": document.data_source_type,
        "name": document.name,
        "doc_type": None,
        "doc_metadata": None,
    }
    return {
        "segment": segment,
        "child_chunks": [
            {
                "id": str(child.segment.id),
                "content": child.segment.content,
                "position": child.segment.position,
                "score": round(child.score, 6),
            }
            for child in record.child_chunks
        ],
        "score": round(record.score, 6),
        "tsne_position": None,
        "files": [],
        "summary": None,
    }
