"""Makers for the datasets routes' path parameters: parameter name → an id of an object that
lives in the given team's workspace. Merged into routes.OBJECT_IN_WORKSPACE."""

from __future__ import annotations

from collections.abc import Callable

from apps.datasets.models import Dataset, Document, IndexingStatus, Segment
from tests.conftest import Team


def _dataset(team: Team) -> Dataset:
    dataset, _ = Dataset.objects.get_or_create(
        workspace=team.workspace,
        name="victim knowledge",
        defaults={"indexing_technique": "economy", "created_by": team.owner},
    )
    return dataset


def _document(team: Team) -> Document:
    dataset = _dataset(team)
    document, _ = Document.objects.get_or_create(
        workspace=team.workspace,
        dataset=dataset,
        name="victim document",
        defaults={
            "data_source_type": "text",
            "batch": f"victimbatch{team.workspace.id.hex[:12]}",
            "indexing_status": IndexingStatus.COMPLETED,
        },
    )
    return document


def _segment(team: Team) -> Segment:
    document = _document(team)
    segment, _ = Segment.objects.get_or_create(
        workspace=team.workspace,
        dataset=document.dataset,
        document=document,
        parent=None,
        position=0,
        defaults={"content": "victim chunk", "content_hash": "0" * 64},
    )
    return segment


OBJECT_IN_WORKSPACE: dict[str, Callable[[Team], str]] = {
    "dataset_id": lambda team: str(_dataset(team).id),
    "document_id": lambda team: str(_document(team).id),
    "segment_id": lambda team: str(_segment(team).id),
    "batch": lambda team: _document(team).batch,
}

# Routes addressed by a secret token (a public link's code) rather than an object id.
TOKEN_ROUTES: set[str] = set()
