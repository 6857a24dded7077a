"""Reads for knowledge bases. Every query starts from `for_workspace`, and a dataset is
found only if the member may see it, so a foreign or hidden id is simply "not found"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from apps.core.errors import NotFound
from apps.datasets.models import (
    Dataset,
    DatasetPermission,
    Document,
    IndexingStatus,
    Segment,
)
from apps.providers.selectors import default_models, usable_models
from apps.tenants.models import ApiKey, ApiKeyScope, Membership, Role, Workspace

PAGE_LIMIT_DEFAULT = 20
PAGE_LIMIT_MAX = 100
# Owners and admins see every knowledge base of the workspace, whatever its visibility.
_SEES_ALL = frozenset({Role.OWNER, Role.ADMIN})


@dataclass
class Page:
    """One page of a list, in the shape Dify's list endpoints answer with."""

    items: list[Any]
    total: int
    page: int
    limit: int

    @property
    def has_more(self) -> bool:
        return self.page * self.limit < self.total

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.limit))


def paginate(queryset: QuerySet, *, page: int = 1, limit: int = PAGE_LIMIT_DEFAULT) -> Page:
    page = max(1, int(page))
    limit = min(max(1, int(limit)), PAGE_LIMIT_MAX)
    total = queryset.count()
    start = (page - 1) * limit
    return Page(items=list(queryset[start : start + limit]), total=total, page=page, limit=limit)


# --- Datasets -----------------------------------------------------------------------------


def dataset_visible(*, membership: Membership) -> QuerySet[Dataset]:
    """The knowledge bases this member may see: the creator always; everyone for
    all_team_members; the chosen members for partial_members; owners and admins all."""
    datasets = Dataset.objects.for_workspace(membership.workspace)
    if membership.role in _SEES_ALL:
        return datasets
    user_id = membership.user_id
    visible = (
        Q(created_by_id=user_id)
        | Q(permission=DatasetPermission.ALL_TEAM_MEMBERS)
        | Q(permission=DatasetPermission.PARTIAL_MEMBERS, members__id=user_id)
    )
    return datasets.filter(pk__in=datasets.filter(visible).values("pk"))


def _with_stats(datasets: QuerySet[Dataset]) -> QuerySet[Dataset]:
    return datasets.annotate(
        document_count=Count("documents", distinct=True),
        word_count=Coalesce(Sum("documents__word_count"), 0),
    )


def dataset_list(
    *,
    membership: Membership,
    keyword: str = "",
    page: int = 1,
    limit: int = PAGE_LIMIT_DEFAULT,
) -> Page:
    datasets = dataset_visible(membership=membership)
    keyword = keyword.strip()
    if keyword:
        datasets = datasets.filter(name__icontains=keyword)
    return paginate(
        _with_stats(datasets).select_related("created_by").order_by("-created_at"),
        page=page,
        limit=limit,
    )


def dataset_get(*, membership: Membership, dataset_id) -> Dataset:
    dataset = (
        _with_stats(dataset_visible(membership=membership))
        .select_related("created_by")
        .filter(pk=dataset_id)
        .first()
    )
    if dataset is None:
        raise NotFound("Dataset not found.")
    return dataset


def dataset_name_taken(*, workspace: Workspace, name: str, exclude_id=None) -> bool:
    others = Dataset.objects.for_workspace(workspace).filter(name=name)
    if exclude_id:
        others = others.exclude(pk=exclude_id)
    return others.exists()


def dataset_member_choices(*, workspace: Workspace) -> QuerySet[Membership]:
    return (
        Membership.objects.for_workspace(workspace).select_related("user").order_by("user__email")
    )


def embedding_model_choices(*, workspace: Workspace) -> list[tuple[str, str]]:
    """The workspace's usable text-embedding models as ("provider/model", label)."""
    rows = usable_models(workspace=workspace, model_type="text-embedding")
    return [(f"{row.provider}/{row.model}", f"{row.label} ({row.provider})") for row in rows]


def rerank_model_choices(*, workspace: Workspace) -> list[tuple[str, str]]:
    rows = usable_models(workspace=workspace, model_type="rerank")
    return [(f"{row.provider}/{row.model}", f"{row.label} ({row.provider})") for row in rows]


def default_embedding_model(*, workspace: Workspace) -> tuple[str, str] | None:
    default = default_models(workspace=workspace).get("text-embedding")
    return (default.provider, default.model) if default else None


# --- Documents and segments ---------------------------------------------------------------


def document_list(
    *,
    dataset: Dataset,
    keyword: str = "",
    status: str = "",
    page: int = 1,
    limit: int = PAGE_LIMIT_DEFAULT,
) -> Page:
    documents = Document.objects.for_workspace(dataset.workspace).filter(dataset=dataset)
    if keyword.strip():
        documents = documents.filter(name__icontains=keyword.strip())
    if status in IndexingStatus.values:
        documents = documents.filter(indexing_status=status)
    elif status == "disabled":
        documents = documents.filter(enabled=False)
    elif status == "available":
        documents = documents.filter(indexing_status=IndexingStatus.COMPLETED, enabled=True)
    return paginate(documents.order_by("-created_at"), page=page, limit=limit)


def document_get(*, dataset: Dataset, document_id) -> Document:
    document = (
        Document.objects.for_workspace(dataset.workspace)
        .filter(dataset=dataset, pk=document_id)
        .first()
    )
    if document is None:
        raise NotFound("Document not found.")
    return document


def document_batch(*, dataset: Dataset, batch: str) -> list[Document]:
    documents = list(
        Document.objects.for_workspace(dataset.workspace)
        .filter(dataset=dataset, batch=batch)
        .order_by("position", "created_at")
    )
    if not documents:
        raise NotFound("Documents not found.")
    return documents


def documents_in_progress(*, dataset: Dataset) -> bool:
    """Whether the documents page should keep polling."""
    return (
        Document.objects.for_workspace(dataset.workspace)
        .filter(dataset=dataset)
        .exclude(indexing_status__in=[IndexingStatus.COMPLETED, IndexingStatus.ERROR])
        .exclude(indexing_status=IndexingStatus.PAUSED)
        .exists()
    )


def segment_list(
    *,
    document: Document,
    keyword: str = "",
    enabled: bool | None = None,
    page: int = 1,
    limit: int = PAGE_LIMIT_DEFAULT,
) -> Page:
    segments = Segment.objects.for_workspace(document.workspace).filter(
        document=document, parent__isnull=True
    )
    if keyword.strip():
        segments = segments.filter(content__icontains=keyword.strip())
    if enabled is not None:
        segments = segments.filter(enabled=enabled)
    return paginate(segments.order_by("position"), page=page, limit=limit)


def segment_get(*, document: Document, segment_id) -> Segment:
    segment = (
        Segment.objects.for_workspace(document.workspace)
        .filter(document=document, pk=segment_id)
        .first()
    )
    if segment is None:
        raise NotFound("Segment not found.")
    return segment


# --- Dataset API keys ---------------------------------------------------------------------


def dataset_api_key_list(*, workspace: Workspace) -> QuerySet[ApiKey]:
    return (
        ApiKey.objects.for_workspace(workspace)
        .filter(scope=ApiKeyScope.DATASET)
        .select_related("created_by")
        .order_by("revoked_at", "-created_at")
    )


def dataset_api_key_get(*, workspace: Workspace, api_key_id) -> ApiKey:
    key = dataset_api_key_list(workspace=workspace).filter(pk=api_key_id).first()
    if key is None:
        raise NotFound("API key not found.")
    return key
