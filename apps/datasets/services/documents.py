"""Documents of a knowledge base: add (files, pasted text, a web page), preview chunks, and
drive indexing (retry, pause, resume, re-index), enable, delete.

Every function takes the acting Membership and checks `knowledge.manage`; the dataset or
document passed in must belong to the actor's workspace (look it up with for_workspace).
Indexing starts after the transaction commits; the row carries its state."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.core.errors import DomainError, NotFound, PermissionDenied
from apps.datasets import chunking, extraction, tasks
from apps.datasets.embeddings import embedding_model_for
from apps.datasets.models import (
    ACTIVE_STATUSES,
    Dataset,
    DataSourceType,
    Document,
    IndexingStatus,
)
from apps.tenants.models import Membership
from apps.tenants.permissions import can

S = IndexingStatus
MB = 1024 * 1024
PREVIEW_CHUNKS = 10


class UploadTooLarge(DomainError):
    code = "file_too_large"
    status = 413


class TooManyFiles(DomainError):
    code = "too_many_files"
    status = 400


# --- Access -------------------------------------------------------------------------


def require_manage(actor: Membership, dataset: Dataset | None = None) -> None:
    if not can(actor.role, "knowledge.manage"):
        raise PermissionDenied("Your role cannot change knowledge bases.")
    if dataset is not None and dataset.workspace_id != actor.workspace_id:
        raise NotFound("Knowledge base not found.")


def _require_document(actor: Membership, document: Document) -> None:
    require_manage(actor)
    if document.workspace_id != actor.workspace_id:
        raise NotFound("Document not found.")


# --- Adding documents ----------------------------------------------------------------


def document_create_from_files(
    *,
    actor: Membership,
    dataset: Dataset,
    files: Sequence[File],
    process_rule: dict | None = None,
    doc_form: str | None = None,
) -> tuple[str, list[Document]]:
    """Store the uploads and queue them for indexing; returns (batch id, documents).

    Every file is checked (type, size, a damaged PDF/Office container) before any is
    stored, so a bad file in a batch adds nothing."""
    require_manage(actor, dataset)
    if not files:
        raise DomainError("Choose at least one file to upload.", code="no_file")
    _check_batch(files)
    contents = [(stored_file_name(upload), read_checked_upload(upload)) for upload in files]
    rule, form = _rule(dataset, process_rule, doc_form)
    _check_embedding_model(dataset)
    batch = _new_batch()
    documents = []
    with transaction.atomic():
        position = _next_position(dataset)
        for offset, (name, data) in enumerate(contents):
            document = _document(
                actor,
                dataset,
                name=name,
                batch=batch,
                position=position + offset,
                rule=rule,
                doc_form=form,
                source=DataSourceType.UPLOAD_FILE,
                mime_type=getattr(_find(files, name), "content_type", "") or "",
            )
            save_document_file(document, name, data)
            documents.append(document)
        tasks.enqueue(document.pk for document in documents)
    return batch, documents


def document_create_from_text(
    *,
    actor: Membership,
    dataset: Dataset,
    name: str,
    text: str,
    process_rule: dict | None = None,
    doc_form: str | None = None,
) -> Document:
    """A document from pasted text (saved as a .txt file, so re-indexing can read it)."""
    require_manage(actor, dataset)
    name = clean_document_name(name)
    if not (text or "").strip():
        raise DomainError("The text is empty: paste something to index.", code="empty_text")
    data = text.encode()
    check_size(name, len(data))
    rule, form = _rule(dataset, process_rule, doc_form)
    _check_embedding_model(dataset)
    with transaction.atomic():
        document = _document(
            actor,
            dataset,
            name=name,
            batch=_new_batch(),
            position=_next_position(dataset),
            rule=rule,
            doc_form=form,
            source=DataSourceType.TEXT,
            mime_type="text/plain",
        )
        save_document_file(document, "text.txt", data)
        tasks.enqueue([document.pk])
    return document


def document_create_from_url(
    *,
    actor: Membership,
    dataset: Dataset,
    url: str,
    process_rule: dict | None = None,
    doc_form: str | None = None,
    name: str = "",
) -> Document:
    """Fetch a web page through the SSRF-guarded client (size capped) and index its main
    text. A private or metadata address is refused unless the operator allows it."""
    require_manage(actor, dataset)
    rule, form = _rule(dataset, process_rule, doc_form)
    _check_embedding_model(dataset)
    data, extension = _fetch(url)
    parsed = urlsplit(url)
    name = clean_document_name(name or f"{parsed.netloc}{parsed.path}".rstrip("/") or url)
    with transaction.atomic():
        document = _document(
            actor,
            dataset,
            name=name,
            batch=_new_batch(),
            position=_next_position(dataset),
            rule=rule,
            doc_form=form,
            source=DataSourceType.URL,
            mime_type=f"text/{extension}",
        )
        document.source_url = url
        save_document_file(document, f"page.{extension}", data)
        tasks.enqueue([document.pk])
    return document


def chunk_preview(
    *,
    actor: Membership,
    process_rule: dict | None,
    doc_form: str = "text_model",
    text: str | None = None,
    file: File | None = None,
    limit: int = PREVIEW_CHUNKS,
) -> list[chunking.Chunk]:
    """The first chunks the rule would make of the text or file; nothing is stored."""
    require_manage(actor)
    if file is not None:
        name = stored_file_name(file)
        source = extraction.extract(name, read_checked_upload(file))
    elif text is not None and text.strip():
        check_size("The text", len(text.encode()))
        source = text
    else:
        raise DomainError("Give a text or a file to preview.", code="no_content")
    rule, form = chunking.normalize_process_rule(process_rule, doc_form=doc_form or "text_model")
    return chunking.chunk_text(source, rule, form)[: max(1, limit)]


# --- Indexing controls ---------------------------------------------------------------


def document_retry(*, actor: Membership, document: Document) -> Document:
    """Queue a failed document again."""
    _require_document(actor, document)
    _requeue(document, allowed=(S.ERROR,), verb="retry")
    return document


def document_pause(*, actor: Membership, document: Document) -> Document:
    """Stop a queued or running document; its running step ends without writing."""
    _require_document(actor, document)
    now = timezone.now()
    paused = Document.objects.filter(
        pk=document.pk, indexing_status__in=(S.WAITING, *ACTIVE_STATUSES)
    ).update(indexing_status=S.PAUSED, paused_at=now, claimed_at=None, updated_at=now)
    if not paused:
        raise DomainError(
            f"{document.name} is not being indexed, so there is nothing to pause.",
            code="not_indexing",
        )
    document.refresh_from_db()
    return document


def document_resume(*, actor: Membership, document: Document) -> Document:
    _require_document(actor, document)
    _requeue(document, allowed=(S.PAUSED,), verb="resume")
    return document


def document_reindex(
    *, actor: Membership, document: Document, process_rule: dict | None = None
) -> Document:
    """Index again from the stored file (after a rule or model change). The old chunks stay
    searchable until the new ones replace them in one go."""
    _require_document(actor, document)
    if process_rule is not None:
        rule, form = chunking.normalize_process_rule(process_rule, doc_form=document.doc_form)
        Document.objects.filter(pk=document.pk).update(process_rule=rule, doc_form=form)
    _requeue(document, allowed=None, verb="re-index")
    return document


def dataset_reindex(*, actor: Membership, dataset: Dataset) -> int:
    """Queue every document of the dataset again (its settings or embedding model
    changed); returns how many were queued."""
    require_manage(actor, dataset)
    _check_embedding_model(dataset)
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Document.objects.for_workspace(dataset.workspace_id)
            .filter(dataset=dataset, archived=False)
            .values_list("pk", flat=True)
        )
        Document.objects.filter(pk__in=ids).update(
            indexing_status=S.WAITING, claimed_at=None, error="", updated_at=now
        )
        tasks.enqueue(ids)
    return len(ids)


def document_set_enabled(*, actor: Membership, document: Document, enabled: bool) -> Document:
    """A disabled document stays indexed but is left out of retrieval."""
    _require_document(actor, document)
    Document.objects.filter(pk=document.pk).update(enabled=enabled, updated_at=timezone.now())
    document.enabled = enabled
    return document


def document_delete(*, actor: Membership, document: Document) -> None:
    """Delete the document, its chunks and its stored file. A run still going finds the
    row gone and stops."""
    _require_document(actor, document)
    file_name = document.file.name if document.file else ""
    document.delete()
    if file_name:
        transaction.on_commit(lambda: delete_stored_file(file_name))


# --- Helpers -------------------------------------------------------------------------


def _requeue(document: Document, *, allowed, verb: str) -> None:
    now = timezone.now()
    rows = Document.objects.filter(pk=document.pk)
    if allowed is not None:
        rows = rows.filter(indexing_status__in=allowed)
    with transaction.atomic():
        if not rows.update(
            indexing_status=S.WAITING, claimed_at=None, error="", paused_at=None, updated_at=now
        ):
            state = document.get_indexing_status_display().lower()
            raise DomainError(
                f"{document.name} cannot {verb} now: it is {state}.", code="invalid_status"
            )
        tasks.enqueue([document.pk])
    document.refresh_from_db()


def _rule(dataset: Dataset, process_rule: dict | None, doc_form: str | None):
    return chunking.normalize_process_rule(
        process_rule if process_rule is not None else (dataset.process_rule or None),
        doc_form=doc_form or dataset.doc_form,
    )


def _check_embedding_model(dataset: Dataset) -> None:
    """Refuse before storing anything if a high-quality dataset has no model to use."""
    embedding_model_for(dataset)


def _document(actor, dataset, *, name, batch, position, rule, doc_form, source, mime_type):
    return Document.objects.create(
        workspace_id=dataset.workspace_id,
        dataset=dataset,
        name=name,
        position=position,
        data_source_type=source,
        batch=batch,
        created_by=actor.user,
        process_rule=rule,
        doc_form=doc_form,
        mime_type=mime_type[:100],
        indexing_status=S.WAITING,
    )


def save_document_file(document: Document, name: str, data: bytes) -> None:
    extension = extraction.extension_of(name) or "txt"
    # The stored name is ours (no user text in storage paths); the document keeps its name.
    stored = f"{document.pk.hex}.{extension}"
    document.file.save(stored, ContentFile(data), save=False)
    document.file_size = len(data)
    document.save(update_fields=["file", "file_size", "source_url", "updated_at"])


def delete_stored_file(name: str) -> None:
    try:
        default_storage.delete(name)
    except OSError:
        pass  # already gone


def _next_position(dataset: Dataset) -> int:
    top = Document.objects.filter(dataset=dataset).aggregate(top=Max("position"))["top"]
    return 0 if top is None else top + 1


def _new_batch() -> str:
    return timezone.now().strftime("%Y%m%d%H%M%S") + secrets.token_hex(7)


def clean_document_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise DomainError("Give the document a name.", code="invalid_param")
    return name[:255]


def stored_file_name(upload: File) -> str:
    raw = getattr(upload, "name", "") or ""
    return clean_document_name(raw.replace("\\", "/").rsplit("/", 1)[-1])


def _find(files: Sequence[File], name: str):
    return next((f for f in files if stored_file_name(f) == name), None)


def _max_file_bytes() -> int:
    return settings.ORRERY_DATASET_MAX_FILE_MB * MB


def check_size(name: str, size: int) -> None:
    if size > _max_file_bytes():
        raise UploadTooLarge(
            f"{name} is {size / MB:.1f} MB; the limit is {settings.ORRERY_DATASET_MAX_FILE_MB} MB "
            "per file."
        )


def _check_batch(files: Sequence[File]) -> None:
    if len(files) > settings.ORRERY_DATASET_MAX_BATCH_FILES:
        raise TooManyFiles(
            f"{len(files)} files is too many for one upload; the limit is "
            f"{settings.ORRERY_DATASET_MAX_BATCH_FILES}."
        )
    total = 0
    for upload in files:
        name = stored_file_name(upload)
        extraction.check_supported(name)
        size = getattr(upload, "size", None) or 0
        check_size(name, size)
        total += size
    if total > settings.ORRERY_DATASET_MAX_BATCH_MB * MB:
        raise UploadTooLarge(
            f"These files add up to {total / MB:.1f} MB; one upload may hold "
            f"{settings.ORRERY_DATASET_MAX_BATCH_MB} MB."
        )


def read_checked_upload(upload: File) -> bytes:
    """The file's bytes, after a cheap look at whether its container is what it claims."""
    name = stored_file_name(upload)
    extension = extraction.check_supported(name)
    if hasattr(upload, "seek"):
        upload.seek(0)
    data = upload.read(_max_file_bytes() + 1)
    check_size(name, len(data))
    if not data:
        raise DomainError(f"{name} is empty.", code="empty_document")
    extraction.sniff(name, extension, data)
    return data


def _fetch(url: str) -> tuple[bytes, str]:
    """(body, extension: html or txt or md or json) of a public web page."""
    from apps.core.outbound import check_url, guarded_client, read_capped

    url = (url or "").strip()
    if not url:
        raise DomainError("Give the address of the page to add.", code="invalid_param")
    check_url(url)
    try:
        with guarded_client(follow_redirects=True, timeout=30.0) as client:
            with client.stream(
                "GET", url, headers={"Accept": "text/html,text/plain;q=0.9,*/*;q=0.5"}
            ) as response:
                if response.status_code >= 400:
                    raise DomainError(
                        f"{url} answered {response.status_code}; the page could not be fetched.",
                        code="fetch_failed",
                    )
                body = read_capped(response, _max_file_bytes())
                content_type = response.headers.get("content-type", "").split(";")[0].strip()
    except DomainError:
        raise
    except Exception as exc:  # httpx's network errors; the user needs one sentence
        raise DomainError(f"{url} could not be fetched: {exc}", code="fetch_failed") from exc
    extension = {
        "text/plain": "txt",
        "text/markdown": "md",
        "application/json": "json",
        "text/csv": "csv",
        "application/pdf": "pdf",
    }.get(content_type, "html")
    return body, extension
