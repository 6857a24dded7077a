"""Replacing a document's content in place (the Knowledge API's update-by-text and
update-by-file): the same document id, a new stored file, then a re-index through the
document services. The old chunks stay searchable until the new ones replace them."""

from __future__ import annotations

from django.core.files.base import File
from django.db import transaction
from django.utils import timezone

from apps.core.errors import DomainError
from apps.datasets.models import Document
from apps.datasets.services import documents
from apps.tenants.models import Membership


def document_update_content(
    *,
    actor: Membership,
    document: Document,
    name: str | None = None,
    text: str | None = None,
    file: File | None = None,
    process_rule: dict | None = None,
) -> Document:
    """Rename the document and/or replace its text or file, then index it again. Only a
    rename (no new content, no new rule) does not re-index."""
    documents.require_manage(actor, document.dataset)
    data, stored_name = None, None
    if file is not None:
        data = documents.read_checked_upload(file)
        stored_name = documents.stored_file_name(file)
    elif text is not None:
        if not text.strip():
            raise DomainError("The text is empty: paste something to index.", code="empty_text")
        data = text.encode()
        documents.check_size("The text", len(data))
        stored_name = "text.txt"
    old_file = document.file.name if document.file else ""
    with transaction.atomic():
        if name is not None:
            document.name = documents.clean_document_name(name)
            document.save(update_fields=["name", "updated_at"])
        elif file is not None and stored_name:
            document.name = stored_name
            document.save(update_fields=["name", "updated_at"])
        if data is not None:
            documents.save_document_file(document, stored_name, data)
    if data is not None and old_file and old_file != document.file.name:
        transaction.on_commit(lambda: documents.delete_stored_file(old_file))
    if data is not None or process_rule is not None:
        documents.document_reindex(actor=actor, document=document, process_rule=process_rule)
    document.refresh_from_db()
    return document


def document_set_archived(*, actor: Membership, document: Document, archived: bool) -> Document:
    """An archived document stays stored and indexed but is left out of retrieval and can
    no longer be edited until it is un-archived (Dify's archive)."""
    documents.require_manage(actor, document.dataset)
    Document.objects.filter(pk=document.pk, workspace=actor.workspace).update(
        archived=archived, updated_at=timezone.now()
    )
    document.archived = archived
    return document
