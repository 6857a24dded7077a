"""Chunks (segments) edited by hand: add, edit (re-embedded), keywords, enable, delete.

In a parent-child document the chunk a person edits is the parent; its children are cut
again from the new text with the document's subchunk rule and embedded."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.core.errors import DomainError, NotFound
from apps.datasets import chunking, indexing
from apps.datasets.embeddings import embed_texts, embedding_model_for
from apps.datasets.models import DocForm, Document, IndexingStatus, Segment
from apps.datasets.services.documents import require_manage
from apps.datasets.vector_index import ensure_vector_index
from apps.tenants.models import Membership

MAX_KEYWORDS = 10
MAX_SEGMENT_CHARS = 20_000


def segment_create(
    *,
    actor: Membership,
    document: Document,
    content: str,
    answer: str = "",
    keywords: list[str] | None = None,
) -> Segment:
    """Add a chunk at the end of the document, embedded and searchable at once."""
    _require_document(actor, document)
    content = _clean_content(content)
    keywords = _clean_keywords(keywords)
    pending = _embed_plan(document, content)
    with transaction.atomic():
        # Locked, so two chunks added at once do not take the same position.
        Document.objects.select_for_update().filter(pk=document.pk).first()
        top = Segment.objects.filter(document=document, parent=None).aggregate(m=Max("position"))
        position = 0 if top["m"] is None else top["m"] + 1
        segment = _save_with_children(
            document,
            None,
            position=position,
            content=content,
            answer=answer,
            keywords=keywords,
            pending=pending,
        )
        _refresh_counts(document)
    return segment


def segment_update(
    *,
    actor: Membership,
    segment: Segment,
    content: str | None = None,
    answer: str | None = None,
    keywords: list[str] | None = None,
    enabled: bool | None = None,
) -> Segment:
    """Change a chunk. New content is embedded again (and a parent's children re-cut)."""
    document = _document_of(actor, segment)
    changed = content is not None and _clean_content(content) != segment.content
    pending = _embed_plan(document, _clean_content(content), parent=segment) if changed else None
    with transaction.atomic():
        if changed:
            segment.content = _clean_content(content)
            segment.content_hash = indexing.content_hash(segment.content)
            segment.word_count = indexing.word_count(segment.content)
            segment.tokens = indexing.token_count(segment.content)
        if answer is not None:
            segment.answer = answer
        if keywords is not None:
            segment.keywords = _clean_keywords(keywords)
        if enabled is not None:
            segment.enabled = enabled
        if changed and pending is not None:
            if segment.searchable:
                _apply_vector(segment, pending.own)
            else:
                segment.children.all().delete()
                _create_children(document, segment, pending)
        segment.save()
        indexing.update_search_vectors(segment_ids=[segment.pk])
        _refresh_counts(document)
    _ensure_index(pending)
    segment.refresh_from_db()
    return segment


def segment_set_enabled(*, actor: Membership, segment: Segment, enabled: bool) -> Segment:
    """A disabled chunk stays stored but is left out of retrieval."""
    _document_of(actor, segment)
    Segment.objects.filter(pk=segment.pk).update(enabled=enabled, updated_at=timezone.now())
    segment.enabled = enabled
    return segment


def segment_delete(*, actor: Membership, segment: Segment) -> None:
    document = _document_of(actor, segment)
    with transaction.atomic():
        segment.delete()
        _refresh_counts(document)


def segment_set_keywords(*, actor: Membership, segment: Segment, keywords: list[str]) -> Segment:
    return segment_update(actor=actor, segment=segment, keywords=keywords)


# --- Helpers -------------------------------------------------------------------------


class _Pending:
    """Vectors computed before the transaction, for the chunk itself or its children."""

    def __init__(self, own=None, children=None, vectors=None, model=None):
        self.own = own
        self.children = children or []
        self.vectors = vectors or []
        self.model = model


def _embed_plan(document: Document, content: str, parent: Segment | None = None) -> _Pending:
    """Embed outside any transaction: a model call must not hold row locks."""
    dataset = document.dataset
    model = embedding_model_for(dataset)
    hierarchical = document.doc_form == DocForm.HIERARCHICAL and (
        parent is None or not parent.searchable
    )
    if hierarchical:
        rule, _ = chunking.normalize_process_rule(
            document.process_rule, doc_form=DocForm.HIERARCHICAL
        )
        children = chunking.split_by_rule(content, rule["rules"]["subchunk_segmentation"]) or [
            content
        ]
        vectors = embed_texts(dataset=dataset, model=model, texts=children).vectors if model else []
        return _Pending(children=children, vectors=vectors, model=model)
    vector = (
        embed_texts(dataset=dataset, model=model, texts=[content]).vectors[0] if model else None
    )
    return _Pending(own=(vector, model))


def _save_with_children(
    document, parent, *, position, content, answer, keywords, pending
) -> Segment:
    hierarchical = bool(pending.children)
    segment = indexing.segment_row(
        document,
        position=position,
        content=content,
        parent=parent,
        answer=answer,
        keywords=keywords,
        searchable=not hierarchical,
    )
    if not hierarchical:
        _apply_vector(segment, pending.own)
    segment.save()
    if hierarchical:
        _create_children(document, segment, pending)
    indexing.update_search_vectors(segment_ids=[segment.pk])
    _ensure_index(pending)
    return segment


def _create_children(document: Document, parent: Segment, pending: _Pending) -> None:
    rows = []
    for position, text in enumerate(pending.children):
        vector = pending.vectors[position] if pending.vectors else None
        row = indexing.segment_row(document, position=position, content=text, parent=parent)
        _apply_vector(row, (vector, pending.model))
        rows.append(row)
    Segment.objects.bulk_create(rows)
    indexing.update_search_vectors(segment_ids=[row.pk for row in rows])


def _apply_vector(segment: Segment, own) -> None:
    vector, model = own or (None, None)
    segment.embedding = vector
    segment.embedding_dim = len(vector) if vector is not None else None
    segment.embedding_model = model.label if vector is not None else ""


def _ensure_index(pending: _Pending | None) -> None:
    if pending is None:
        return
    vector = pending.own[0] if pending.own else (pending.vectors[0] if pending.vectors else None)
    if vector is not None:
        ensure_vector_index(len(vector))


def _refresh_counts(document: Document) -> None:
    searchable = Segment.objects.filter(document=document, searchable=True).count()
    Document.objects.filter(pk=document.pk, indexing_status=IndexingStatus.COMPLETED).update(
        total_segments=searchable, completed_segments=searchable, updated_at=timezone.now()
    )


def _require_document(actor: Membership, document: Document) -> None:
    require_manage(actor)
    if document.workspace_id != actor.workspace_id:
        raise NotFound("Document not found.")
    if document.indexing_status != IndexingStatus.COMPLETED:
        raise DomainError(
            "Chunks can be changed once the document has finished indexing.",
            code="document_indexing",
        )


def _document_of(actor: Membership, segment: Segment) -> Document:
    require_manage(actor)
    if segment.workspace_id != actor.workspace_id:
        raise NotFound("Chunk not found.")
    document = Document.objects.select_related("dataset").get(pk=segment.document_id)
    _require_document(actor, document)
    return document


def _clean_content(content: str | None) -> str:
    content = (content or "").strip()
    if not content:
        raise DomainError("A chunk needs some text.", code="invalid_param")
    if len(content) > MAX_SEGMENT_CHARS:
        raise DomainError(
            f"A chunk may hold at most {MAX_SEGMENT_CHARS} characters.", code="invalid_param"
        )
    return content


def _clean_keywords(keywords) -> list[str]:
    if keywords is None:
        return []
    if isinstance(keywords, str) or not all(isinstance(k, str) for k in keywords):
        raise DomainError("Keywords must be a list of words.", code="invalid_param")
    cleaned = list(dict.fromkeys(k.strip()[:100] for k in keywords if k.strip()))
    if len(cleaned) > MAX_KEYWORDS:
        raise DomainError(
            f"A chunk may have at most {MAX_KEYWORDS} keywords.", code="invalid_param"
        )
    return cleaned
