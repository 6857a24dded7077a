"""Indexing one document: extract → clean → split → embed → store, with its state in its row.

The row is the source of truth; a broker message is only a wake-up. A worker *claims* a
waiting document with a conditional update that also bumps `attempts`; that number is the
run's fencing token. Every later write of the run is conditional on it (and on the row
still being in an active status), so a run that was paused, re-indexed, or presumed dead
by the reconciler and replaced can no longer write anything: its next step finds 0 rows
and stops. The chunks are replaced in one transaction that locks the row under the same
token, so a document completes exactly once and never holds two runs' chunks.

`reconcile()` frees claims whose lease ran out (a killed worker) and wakes up waiting
documents nobody picked up (a lost message)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from dramatiq.middleware.time_limit import TimeLimitExceeded

from apps.core.errors import DomainError
from apps.datasets import chunking, extraction
from apps.datasets.cleaning import clean
from apps.datasets.embeddings import EmbeddingModel, embed_batch_size, embed_texts
from apps.datasets.embeddings import embedding_model_for as _embedding_model_for
from apps.datasets.models import (
    ACTIVE_STATUSES,
    DocForm,
    Document,
    IndexingStatus,
    Segment,
)
from apps.datasets.text_search import TEXT_SEARCH_CONFIG
from apps.datasets.vector_index import ensure_vector_index

logger = logging.getLogger(__name__)
S = IndexingStatus


class Superseded(Exception):
    """This run no longer owns the document (paused, re-indexed, or taken over)."""


class Retryable(Exception):
    """A passing failure (the database went away): the claim is released for another go."""


@dataclass
class Outcome:
    status: str  # completed, error, skipped, superseded, released
    segments: int = 0
    embedding_seconds: float = 0.0
    total_seconds: float = 0.0


# --- Claims -------------------------------------------------------------------------


_CLAIM_SQL = """
UPDATE datasets_document SET
    indexing_status = %s, claimed_at = %s, attempts = attempts + 1,
    processing_started_at = %s, parsing_completed_at = NULL, cleaning_completed_at = NULL,
    splitting_completed_at = NULL, completed_at = NULL, stopped_at = NULL, paused_at = NULL,
    error = '', completed_segments = 0, total_segments = 0, updated_at = %s
WHERE id = %s AND indexing_status = %s
RETURNING attempts
"""


def claim(document_id) -> int | None:
    """Take a waiting document; returns the run's token (its new `attempts`), or None if
    the document is not waiting (someone else has it, or it was paused or deleted)."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [S.PARSING, now, now, now, document_id, S.WAITING])
        row = cursor.fetchone()
    return row[0] if row else None


BRIEF_STEP_SECONDS = 0.5


class Run:
    def __init__(self, document_id, token: int):
        self.document_id = document_id
        self.token = token
        self._written = time.monotonic()  # the claim was the last write
        self._pending: dict = {}

    def _mine(self):
        return Document.objects.filter(
            pk=self.document_id, attempts=self.token, indexing_status__in=ACTIVE_STATUSES
        )

    def advance(self, *, brief: bool = False, **fields) -> None:
        """Record progress (and renew the lease); Superseded if the run lost the row.

        A `brief` step (one that usually lasts milliseconds, like cleaning) is written only
        if the last write is BRIEF_STEP_SECONDS old; otherwise its fields ride along with
        the next write, so no page could have seen it anyway and a round trip is saved."""
        moment = time.monotonic()
        self._pending.update(fields)
        if brief and moment - self._written < BRIEF_STEP_SECONDS:
            return
        now = timezone.now()
        fields, self._pending = self._pending, {}
        if not self._mine().update(claimed_at=now, updated_at=now, **fields):
            raise Superseded()
        self._written = moment

    def fail(self, message: str) -> None:
        now = timezone.now()
        self._mine().update(
            indexing_status=S.ERROR,
            error=message[:2000],
            stopped_at=now,
            claimed_at=None,
            updated_at=now,
        )

    def release(self) -> None:
        """Give the row back for a later attempt (the broker retries, or the reconciler)."""
        now = timezone.now()
        self._mine().update(indexing_status=S.WAITING, claimed_at=None, updated_at=now)


# --- The pipeline -------------------------------------------------------------------


def index_document(document_id) -> Outcome:
    started = time.perf_counter()
    token = claim(document_id)
    if token is None:
        return Outcome("skipped")
    run = Run(document_id, token)
    try:
        return _index(run, started)
    except Superseded:
        return Outcome("superseded")
    except DomainError as exc:
        run.fail(exc.message if not hasattr(exc, "provider_message") else str(exc))
        return Outcome("error")
    except TimeLimitExceeded:
        run.fail(
            "Indexing took longer than the time limit "
            f"({settings.ORRERY_INDEXING_TIME_LIMIT_SECONDS} seconds) and was stopped. "
            "Split the file into smaller ones, or ask the operator to raise the limit."
        )
        raise
    except DatabaseError as exc:
        logger.warning("indexing %s hit a database error; releasing it", document_id)
        try:
            run.release()
        except DatabaseError:
            pass  # the reconciler frees the claim once its lease runs out
        raise Retryable(str(exc)) from exc
    except Exception:
        logger.exception("indexing %s failed", document_id)
        run.fail(
            "Indexing failed because of an internal error. Retry it; if it fails again, "
            "tell the operator (the server log has the details)."
        )
        return Outcome("error")


def _index(run: Run, started: float) -> Outcome:
    document = Document.objects.select_related("dataset").get(pk=run.document_id)
    dataset = document.dataset
    text = read_document_text(document)
    run.advance(indexing_status=S.CLEANING, parsing_completed_at=timezone.now(), brief=True)

    rule, doc_form = chunking.normalize_process_rule(
        document.process_rule or dataset.process_rule or None, doc_form=document.doc_form
    )
    text = clean(text, rule["rules"].get("pre_processing_rules"))
    run.advance(indexing_status=S.SPLITTING, cleaning_completed_at=timezone.now(), brief=True)

    # Cleaning is done; chunk_text cleans again, which is idempotent on clean text.
    chunks = chunking.chunk_text(text, rule, doc_form)
    if not chunks:
        raise DomainError(f"{document.name} has no text left to index after cleaning.")
    to_embed = (
        [child for chunk in chunks for child in chunk.children]
        if doc_form == DocForm.HIERARCHICAL
        else [chunk.content for chunk in chunks]
    )
    run.advance(
        indexing_status=S.INDEXING,
        splitting_completed_at=timezone.now(),
        total_segments=len(to_embed),
        completed_segments=0,
    )

    model = _embedding_model_for(dataset)
    vectors: list[list[float] | None] = [None] * len(to_embed)
    embedding_seconds = 0.0
    if model is not None:
        size = embed_batch_size()
        for start in range(0, len(to_embed), size):
            embedded = embed_texts(
                dataset=dataset, model=model, texts=to_embed[start : start + size]
            )
            vectors[start : start + len(embedded.vectors)] = embedded.vectors
            embedding_seconds += embedded.seconds
            run.advance(completed_segments=min(start + size, len(to_embed)))

    count = store_segments(
        run, document, chunks, doc_form, vectors, model, started, embedding_seconds
    )
    return Outcome(
        "completed",
        segments=count,
        embedding_seconds=embedding_seconds,
        total_seconds=time.perf_counter() - started,
    )


def read_document_text(document: Document) -> str:
    if not document.file:
        raise DomainError(f"{document.name} has no stored file to index; upload it again.")
    try:
        with default_storage.open(document.file.name, "rb") as handle:
            data = handle.read()
    except FileNotFoundError as exc:
        raise DomainError(
            f"The stored file of {document.name} is missing; upload it again."
        ) from exc
    return extraction.extract(stored_name(document), data)


def stored_name(document: Document) -> str:
    """A name whose extension is the stored file's format (pasted text is saved as .txt)."""
    extension = extraction.extension_of(document.file.name)
    if extraction.extension_of(document.name) == extension:
        return document.name
    return f"{document.name}.{extension}"


# --- Storing ------------------------------------------------------------------------


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def word_count(text: str) -> int:
    return len(text.split())


def token_count(text: str) -> int:
    from apps.providers.tokens import estimate_tokens  # the runtime's counter, one for all

    return estimate_tokens(text)


def segment_row(
    document: Document, *, position: int, content: str, parent=None, **extra
) -> Segment:
    return Segment(
        workspace_id=document.workspace_id,
        dataset_id=document.dataset_id,
        document=document,
        parent=parent,
        position=position,
        content=content,
        content_hash=content_hash(content),
        word_count=word_count(content),
        tokens=token_count(content),
        **extra,
    )


def _vector_fields(vector, model: EmbeddingModel | None) -> dict:
    if vector is None:
        return {}
    return {"embedding": vector, "embedding_dim": len(vector), "embedding_model": model.label}


def store_segments(
    run: Run,
    document: Document,
    chunks: list[chunking.Chunk],
    doc_form: str,
    vectors: list,
    model: EmbeddingModel | None,
    started: float,
    embedding_seconds: float,
) -> int:
    """Replace the document's chunks and mark it completed, all in one transaction."""
    vectors_left = iter(vectors)
    parents: list[Segment] = []
    children: list[Segment] = []
    if doc_form == DocForm.HIERARCHICAL:
        for position, chunk in enumerate(chunks):
            parent = segment_row(
                document, position=position, content=chunk.content, searchable=False
            )
            parents.append(parent)
            for child_position, child in enumerate(chunk.children):
                children.append(
                    segment_row(
                        document,
                        position=child_position,
                        content=child,
                        parent=parent,
                        **_vector_fields(next(vectors_left), model),
                    )
                )
    else:
        for position, chunk in enumerate(chunks):
            parents.append(
                segment_row(
                    document,
                    position=position,
                    content=chunk.content,
                    **_vector_fields(next(vectors_left), model),
                )
            )
    rows = parents + children
    with transaction.atomic():
        _no_wait_for_flush()
        locked = (
            Document.objects.select_for_update()
            .filter(pk=run.document_id, attempts=run.token, indexing_status=S.INDEXING)
            .first()
        )
        if locked is None:
            raise Superseded()
        with connection.cursor() as cursor:
            # Parents and children go in one statement, so their foreign key holds.
            cursor.execute("DELETE FROM datasets_segment WHERE document_id = %s", [run.document_id])
        insert_segments(parents)
        insert_segments(children)
        now = timezone.now()
        Document.objects.filter(pk=run.document_id).update(
            indexing_status=S.COMPLETED,
            completed_at=now,
            claimed_at=None,
            error="",
            completed_segments=len(children or parents),
            total_segments=len(children or parents),
            word_count=sum(row.word_count for row in parents),
            tokens=sum(row.tokens for row in parents),
            embedding_ms=int(embedding_seconds * 1000),
            indexing_ms=int((time.perf_counter() - started) * 1000),
            updated_at=now,
        )
    for dim in {row.embedding_dim for row in rows if row.embedding_dim}:
        ensure_vector_index(dim)
    return len(rows)


_INSERT_SQL = """
INSERT INTO datasets_segment (
    id, workspace_id, dataset_id, document_id, parent_id, position, content, answer, keywords,
    word_count, tokens, content_hash, enabled, searchable, hit_count, embedding, embedding_dim,
    embedding_model, search_vector, created_at, updated_at)
SELECT r.id, %s, %s, %s, r.parent_id, r.position, r.content, '', '[]'::jsonb,
    r.word_count, r.tokens, r.content_hash, true, r.searchable, 0, r.embedding::vector,
    r.embedding_dim, r.embedding_model, to_tsvector(%s::regconfig, r.content),
    %s, %s
FROM unnest(%s::uuid[], %s::uuid[], %s::int[], %s::text[], %s::int[], %s::int[], %s::text[],
            %s::bool[], %s::text[], %s::int[], %s::text[])
    AS r(id, parent_id, position, content, word_count, tokens, content_hash, searchable,
         embedding, embedding_dim, embedding_model)
"""


def insert_segments(rows: list[Segment]) -> None:
    """Insert new chunks in one statement, their search vector computed as they go in.
    (bulk_create then an UPDATE for the tsvector would write every row twice, and each
    version of a row costs an insertion into the HNSW and GIN indexes.)"""
    if not rows:
        return
    first = rows[0]
    now = timezone.now()
    columns = [
        [row.pk for row in rows],
        [row.parent_id for row in rows],
        [row.position for row in rows],
        [row.content for row in rows],
        [row.word_count for row in rows],
        [row.tokens for row in rows],
        [row.content_hash for row in rows],
        [row.searchable for row in rows],
        [_vector_text(row.embedding) for row in rows],
        [row.embedding_dim for row in rows],
        [row.embedding_model for row in rows],
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_SQL,
            [
                first.workspace_id,
                first.dataset_id,
                first.document_id,
                TEXT_SEARCH_CONFIG,
                now,
                now,
                *columns,
            ],
        )


def _vector_text(vector) -> str | None:
    if vector is None:
        return None
    return json.dumps([float(x) for x in vector], separators=(",", ":"))


def update_search_vectors(*, segment_ids: Iterable) -> None:
    """Fill `search_vector` as apps.datasets.text_search defines it: content and answer
    with the default weight, the chunk's keywords with weight A."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE datasets_segment SET search_vector =
                to_tsvector(%s::regconfig, btrim(content || E'\\n' || answer))
                || setweight(to_tsvector(%s::regconfig, coalesce(
                     (SELECT string_agg(value, ' ') FROM jsonb_array_elements_text(keywords)),
                     '')), 'A')
            WHERE id = ANY(%s)
            """,
            [TEXT_SEARCH_CONFIG, TEXT_SEARCH_CONFIG, list(segment_ids)],
        )


def _no_wait_for_flush() -> None:
    """Commit this transaction without waiting for its WAL flush. A crash may lose the
    last few milliseconds of commits, which here is harmless: the chunks and the
    `completed` status are lost together, and the reconciler indexes the document again."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")


# --- Reconciler ---------------------------------------------------------------------


def reconcile(*, now=None) -> list:
    """Free expired claims and return the ids of waiting documents that need a wake-up.

    A claim expires when its run has not renewed it for ORRERY_INDEXING_LEASE_SECONDS (its
    worker died). A document that has used up ORRERY_INDEXING_MAX_ATTEMPTS is failed
    instead of retried, so a file that kills workers cannot loop forever."""
    now = now or timezone.now()
    lease = timedelta(seconds=settings.ORRERY_INDEXING_LEASE_SECONDS)
    expired = Q(indexing_status__in=ACTIVE_STATUSES) & (
        Q(claimed_at__lt=now - lease) | Q(claimed_at__isnull=True)
    )
    give_up = Document.objects.filter(expired, attempts__gte=settings.ORRERY_INDEXING_MAX_ATTEMPTS)
    give_up.update(
        indexing_status=S.ERROR,
        error=(
            f"Indexing was interrupted {settings.ORRERY_INDEXING_MAX_ATTEMPTS} times (the worker "
            "stopped while handling this document). Retry it, or split it into smaller files."
        ),
        stopped_at=now,
        claimed_at=None,
        updated_at=now,
    )
    freed = list(Document.objects.filter(expired).values_list("pk", flat=True)[:1000])
    Document.objects.filter(expired, pk__in=freed).update(
        indexing_status=S.WAITING, claimed_at=None, updated_at=now
    )
    # Waiting rows untouched for a while lost their message (or it was never sent).
    stale_wait = now - timedelta(seconds=settings.ORRERY_INDEXING_WAKE_AFTER_SECONDS)
    ids = freed + list(
        Document.objects.filter(indexing_status=S.WAITING, updated_at__lt=stale_wait)
        .order_by("updated_at")
        .values_list("pk", flat=True)[:1000]
    )
    # Touched, so the next pass does not wake them again while they sit in the queue.
    Document.objects.filter(pk__in=ids, indexing_status=S.WAITING).update(updated_at=now)
    return ids
