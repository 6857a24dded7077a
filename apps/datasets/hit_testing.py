"""Hit testing: try a query against one knowledge base, see the ranked chunks with their
scores, and keep the query in the knowledge base's history. The hit-testing page and the
Knowledge API's `POST /v1/datasets/{id}/retrieve` both stand on this."""

from __future__ import annotations

from dataclasses import dataclass

from apps.core.errors import NotFound, PermissionDenied
from apps.datasets.models import Dataset, DatasetQuery
from apps.datasets.retrieval import InvalidRetrievalModel, RetrievedRecord, retrieve
from apps.datasets.wire import retrieve_record_body
from apps.tenants.models import Membership
from apps.tenants.permissions import can

MAX_QUERY_LENGTH = 250  # Dify's limit on a hit-testing query


@dataclass
class HitTestingResult:
    query: DatasetQuery
    records: list[RetrievedRecord]

    def to_dify(self) -> dict:
        """The body of Dify's `/datasets/{id}/retrieve` (and `/hit-testing`) response."""
        return {
            "query": {"content": self.query.content},
            "records": [retrieve_record_body(record) for record in self.records],
        }


def hit_testing(
    *,
    actor: Membership | None,
    dataset: Dataset,
    query: str,
    retrieval_model: dict | None = None,
    source: str = DatasetQuery.Source.HIT_TESTING,
) -> HitTestingResult:
    """Search `dataset` for `query` and record the query. `actor` is the member on the
    page; None for a dataset API key (the key's check is the caller's). An empty
    `retrieval_model` uses the dataset's own."""
    if actor is not None:
        if actor.workspace_id != dataset.workspace_id:
            raise NotFound("Knowledge base not found.")
        if not can(actor.role, "knowledge.view"):
            raise PermissionDenied("Your role cannot search knowledge bases.")
    query = (query or "").strip()
    if len(query) > MAX_QUERY_LENGTH:
        raise InvalidRetrievalModel(
            f"The query is {len(query)} characters long; at most {MAX_QUERY_LENGTH} are allowed."
        )
    records = retrieve(
        workspace=dataset.workspace_id,
        datasets=[dataset],
        query=query,
        retrieval_model=retrieval_model or None,
        source="knowledge",
    )
    recorded = DatasetQuery.objects.create(
        workspace_id=dataset.workspace_id,
        dataset=dataset,
        content=query,
        source=source,
        created_by=actor.user if actor is not None else None,
    )
    return HitTestingResult(query=recorded, records=records)


def dataset_query_history(*, workspace, dataset: Dataset):
    """Past queries of this dataset, newest first (a queryset: paginate it)."""
    return (
        DatasetQuery.objects.for_workspace(workspace)
        .filter(dataset=dataset)
        .select_related("created_by")
        .order_by("-created_at")
    )
