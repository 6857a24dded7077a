"""Management API for knowledge bases under /api/ (workspace management key): the dataset
API keys that open the Knowledge API at /v1/datasets."""

from datetime import datetime
from uuid import UUID

from ninja import Router, Schema
from ninja.responses import Status

from apps.datasets import selectors
from apps.datasets.services import datasets as services

router = Router(tags=["knowledge"])


class DatasetKeyIn(Schema):
    name: str


class DatasetKeyOut(Schema):
    id: UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class DatasetKeyCreated(DatasetKeyOut):
    key: str  # shown in this response only


@router.post("/dataset-keys", response={201: DatasetKeyCreated})
def dataset_key_create(request, payload: DatasetKeyIn):
    """Create a Knowledge API key. The key is in this response only; keep it."""
    key, raw = services.dataset_api_key_create(actor=request.membership, name=payload.name)
    return Status(201, {**DatasetKeyOut.from_orm(key).dict(), "key": raw})


@router.get("/dataset-keys", response=list[DatasetKeyOut])
def dataset_key_list(request):
    return list(selectors.dataset_api_key_list(workspace=request.workspace))


@router.delete("/dataset-keys/{uuid:api_key_id}", response={204: None})
def dataset_key_revoke(request, api_key_id: UUID):
    services.dataset_api_key_revoke(actor=request.membership, api_key_id=api_key_id)
    return Status(204, None)
