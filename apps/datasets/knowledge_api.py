"""Dify's Knowledge API under /v1/datasets, opened by a dataset API key.

Wire-compatible with Dify's: the same paths (with the aliases Dify keeps), field names,
pagination ({data, has_more, limit, total, page}), status values and error bodies
({code, message, status}, from config.service_api). Every id is looked up inside the
key's workspace, so another workspace's key gets 404 for all of them. A key acts with
admin rights, as management keys do (only owners and admins can make keys)."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import pydantic
from django.http import HttpResponse
from django.urls import register_converter
from ninja import Router, Schema

from apps.core.errors import DomainError, NotFound
from apps.datasets import hit_testing, selectors, wire
from apps.datasets.models import Dataset, Document, IndexingTechnique
from apps.datasets.services import datasets as dataset_services
from apps.datasets.services import document_updates, documents, segments
from apps.tenants.auth import WorkspaceApiKey
from apps.tenants.models import ApiKeyScope

QUERY_MAX = 250


class BatchConverter:
    """An upload batch id: letters and digits only (Dify's are digits; ours add hex)."""

    regex = "[0-9A-Za-z]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(BatchConverter, "batch")


class DatasetApiKey(WorkspaceApiKey):
    """`Authorization: Bearer <dataset key>`: a workspace key of the dataset scope."""

    scope = ApiKeyScope.DATASET


router = Router(tags=["knowledge api"], auth=DatasetApiKey())


class Invalid(DomainError):
    code = "invalid_param"


def _json_body(request) -> dict[str, Any]:
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise Invalid("The request body must be a JSON object.")
    return body


def _str(body: dict, name: str, *, required: bool = False, max_length: int | None = None) -> str:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise Invalid(f"{name} is required.")
        return ""
    if not isinstance(value, str):
        raise Invalid(f"{name} must be a string.")
    if max_length and len(value) > max_length:
        raise Invalid(f"{name} can be at most {max_length} characters.")
    return value


def _obj(body: dict, name: str) -> dict | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid(f"{name} must be an object.")
    return value


def _page_args(request) -> tuple[int, int]:
    try:
        page = int(request.GET.get("page") or 1)
        limit = int(request.GET.get("limit") or selectors.PAGE_LIMIT_DEFAULT)
    except ValueError as exc:
        raise Invalid("page and limit must be whole numbers.") from exc
    if page < 1 or not 1 <= limit <= selectors.PAGE_LIMIT_MAX:
        raise Invalid(
            f"page must be at least 1 and limit between 1 and {selectors.PAGE_LIMIT_MAX}."
        )
    return page, limit


def _dataset(request, dataset_id) -> Dataset:
    return selectors.dataset_get(membership=request.membership, dataset_id=dataset_id)


def _document(request, dataset_id, document_id) -> tuple[Dataset, Document]:
    dataset = _dataset(request, dataset_id)
    return dataset, selectors.document_get(dataset=dataset, document_id=document_id)


def _no_content() -> HttpResponse:
    return HttpResponse(status=204)


# --- Datasets ------------------------------------------------------------------------------


@router.post("/datasets", response={200: dict})
def dataset_create(request):
    body = _json_body(request)
    technique = _str(body, "indexing_technique") or (
        IndexingTechnique.HIGH_QUALITY
        if body.get("embedding_model")
        or selectors.default_embedding_model(workspace=request.workspace)
        else IndexingTechnique.ECONOMY
    )
    if _str(body, "provider") not in ("", "vendor"):
        raise Invalid("Only provider 'vendor' is supported: external knowledge is not.")
    dataset = dataset_services.dataset_create(
        actor=request.membership,
        name=_str(body, "name", required=True, max_length=dataset_services.NAME_MAX),
        description=_str(body, "description", max_length=dataset_services.DESCRIPTION_MAX),
        permission=_str(body, "permission") or "only_me",
        member_ids=[
            m.get("user_id") for m in body.get("partial_member_list") or [] if isinstance(m, dict)
        ],
        indexing_technique=technique,
        embedding_model_provider=_str(body, "embedding_model_provider"),
        embedding_model=_str(body, "embedding_model"),
        retrieval_model=_obj(body, "retrieval_model"),
    )
    return wire.dataset_body(_dataset(request, dataset.pk))


@router.get("/datasets", response={200: dict})
def dataset_list(request):
    page, limit = _page_args(request)
    found = selectors.dataset_list(
        membership=request.membership,
        keyword=request.GET.get("keyword", ""),
        page=page,
        limit=limit,
    )
    return wire.page_body(found, [wire.dataset_body(d) for d in found.items])


@router.get("/datasets/{uuid:dataset_id}", response={200: dict})
def dataset_detail(request, dataset_id: UUID):
    return wire.dataset_body(_dataset(request, dataset_id))


@router.patch("/datasets/{uuid:dataset_id}", response={200: dict})
def dataset_update(request, dataset_id: UUID):
    dataset = _dataset(request, dataset_id)
    body = _json_body(request)
    changes: dict[str, Any] = {}
    for name, max_length in (
        ("name", dataset_services.NAME_MAX),
        ("description", dataset_services.DESCRIPTION_MAX),
        ("indexing_technique", None),
        ("permission", None),
        ("embedding_model", None),
        ("embedding_model_provider", None),
    ):
        if name in body:
            changes[name] = _str(body, name, required=name == "name", max_length=max_length)
    if "retrieval_model" in body:
        changes["retrieval_model"] = _obj(body, "retrieval_model")
    if "partial_member_list" in body:
        members = body["partial_member_list"] or []
        if not isinstance(members, list):
            raise Invalid("partial_member_list must be a list.")
        changes["member_ids"] = [m.get("user_id") for m in members if isinstance(m, dict)]
    dataset_services.dataset_update(actor=request.membership, dataset=dataset, **changes)
    return wire.dataset_body(_dataset(request, dataset_id))


@router.delete("/datasets/{uuid:dataset_id}")
def dataset_delete(request, dataset_id: UUID):
    dataset = _dataset(request, dataset_id)
    dataset_services.dataset_delete(actor=request.membership, dataset=dataset)
    return _no_content()


# --- Documents -----------------------------------------------------------------------------


def _document_options(body: dict) -> dict[str, Any]:
    """The fields create-by-text and create-by-file share."""
    options: dict[str, Any] = {}
    if body.get("process_rule") is not None:
        options["process_rule"] = _obj(body, "process_rule")
    if body.get("doc_form"):
        options["doc_form"] = _str(body, "doc_form")
    _str(body, "doc_language", max_length=32)  # accepted; chunking is language-neutral
    technique = _str(body, "indexing_technique")
    if technique and technique not in IndexingTechnique.values:
        raise Invalid("indexing_technique must be high_quality or economy.")
    return options


def _created(document: Document) -> dict[str, Any]:
    return {"document": wire.document_body(document), "batch": document.batch}


def _alias(path: str, view, operation_id: str) -> None:
    """Another POST path for `view`, left out of the schema (Dify answers both spellings)."""
    router.add_api_operation(
        path,
        ["POST"],
        view,
        response={200: dict},
        operation_id=operation_id,
        include_in_schema=False,
    )


@router.post("/datasets/{uuid:dataset_id}/document/create-by-text", response={200: dict})
def document_create_by_text(request, dataset_id: UUID):
    dataset = _dataset(request, dataset_id)
    body = _json_body(request)
    document = documents.document_create_from_text(
        actor=request.membership,
        dataset=dataset,
        name=_str(body, "name", required=True, max_length=255),
        text=_str(body, "text", required=True),
        **_document_options(body),
    )
    return _created(document)


_alias(
    "/datasets/{uuid:dataset_id}/document/create_by_text",
    document_create_by_text,
    "document_create_by_text_alias",
)


def _file_and_data(request) -> tuple[Any, dict[str, Any]]:
    upload = request.FILES.get("file")
    if upload is None:
        raise Invalid(
            "No file uploaded: send it as the multipart field 'file'.", code="no_file_uploaded"
        )
    if len(request.FILES.getlist("file")) > 1:
        raise Invalid("Only one file is allowed.", code="too_many_files")
    raw = request.POST.get("data") or "{}"
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise Invalid("data must be a JSON string.") from exc
    if not isinstance(data, dict):
        raise Invalid("data must be a JSON object.")
    return upload, data


@router.post("/datasets/{uuid:dataset_id}/document/create-by-file", response={200: dict})
def document_create_by_file(request, dataset_id: UUID):
    dataset = _dataset(request, dataset_id)
    upload, data = _file_and_data(request)
    _, created = documents.document_create_from_files(
        actor=request.membership, dataset=dataset, files=[upload], **_document_options(data)
    )
    return _created(created[0])


_alias(
    "/datasets/{uuid:dataset_id}/document/create_by_file",
    document_create_by_file,
    "document_create_by_file_alias",
)


@router.post(
    "/datasets/{uuid:dataset_id}/documents/{uuid:document_id}/update-by-text",
    response={200: dict},
)
def document_update_by_text(request, dataset_id: UUID, document_id: UUID):
    dataset, document = _document(request, dataset_id, document_id)
    body = _json_body(request)
    if body.get("text") is not None and not _str(body, "name"):
        raise Invalid("name is required when text is given.")
    options = _document_options(body)
    document = document_updates.document_update_content(
        actor=request.membership,
        document=document,
        name=_str(body, "name", max_length=255) or None,
        text=_str(body, "text") or None,
        process_rule=options.get("process_rule"),
    )
    return _created(document)


@router.post(
    "/datasets/{uuid:dataset_id}/documents/{uuid:document_id}/update-by-file",
    response={200: dict},
)
def document_update_by_file(request, dataset_id: UUID, document_id: UUID):
    dataset, document = _document(request, dataset_id, document_id)
    upload, data = _file_and_data(request)
    options = _document_options(data)
    document = document_updates.document_update_content(
        actor=request.membership,
        document=document,
        name=_str(data, "name", max_length=255) or None,
        file=upload,
        process_rule=options.get("process_rule"),
    )
    return _created(document)


for _path, _view in (
    ("update_by_text", document_update_by_text),
    ("update_by_file", document_update_by_file),
):
    _alias(
        f"/datasets/{{uuid:dataset_id}}/documents/{{uuid:document_id}}/{_path}",
        _view,
        f"document_{_path}_alias",
    )


def _set_status(request, dataset_id: UUID, action: str) -> dict[str, str]:
    """PATCH …/documents/status/{enable|disable|archive|un_archive} with
    {"document_ids": [...]}: every id must be a document of this dataset."""
    dataset = _dataset(request, dataset_id)
    ids = _json_body(request).get("document_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise Invalid("document_ids must be a non-empty list of document ids.")
    found = [selectors.document_get(dataset=dataset, document_id=_uuid(i)) for i in ids]
    for document in found:
        if action in ("enable", "disable"):
            documents.document_set_enabled(
                actor=request.membership, document=document, enabled=action == "enable"
            )
        else:
            document_updates.document_set_archived(
                actor=request.membership, document=document, archived=action == "archive"
            )
    return {"result": "success"}


def _uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError as exc:
        raise NotFound("Document not found.") from exc


def _status_view(action: str):
    def view(request, dataset_id: UUID):
        return _set_status(request, dataset_id, action)

    view.__name__ = f"document_status_{action}"
    return view


for _action in ("enable", "disable", "archive", "un_archive"):
    router.add_api_operation(
        f"/datasets/{{uuid:dataset_id}}/documents/status/{_action}",
        ["PATCH"],
        _status_view(_action),
        response={200: dict},
        operation_id=f"document_status_{_action}",
    )


@router.get("/datasets/{uuid:dataset_id}/documents", response={200: dict})
def document_list(request, dataset_id: UUID):
    dataset = _dataset(request, dataset_id)
    page, limit = _page_args(request)
    found = selectors.document_list(
        dataset=dataset,
        keyword=request.GET.get("keyword", ""),
        status=request.GET.get("status", ""),
        page=page,
        limit=limit,
    )
    return wire.page_body(found, [wire.document_body(d) for d in found.items])


@router.get("/datasets/{uuid:dataset_id}/documents/{uuid:document_id}", response={200: dict})
def document_detail(request, dataset_id: UUID, document_id: UUID):
    dataset, document = _document(request, dataset_id, document_id)
    body = wire.document_body(document)
    body["dataset_process_rule"] = dataset.process_rule
    body["document_process_rule"] = document.process_rule
    body["segment_count"] = document.segments.filter(parent__isnull=True).count()
    return body


@router.delete("/datasets/{uuid:dataset_id}/documents/{uuid:document_id}")
def document_delete(request, dataset_id: UUID, document_id: UUID):
    dataset, document = _document(request, dataset_id, document_id)
    documents.document_delete(actor=request.membership, document=document)
    return _no_content()


@router.get(
    "/datasets/{uuid:dataset_id}/documents/{batch:batch}/indexing-status", response={200: dict}
)
def document_indexing_status(request, dataset_id: UUID, batch: str):
    dataset = _dataset(request, dataset_id)
    documents = selectors.document_batch(dataset=dataset, batch=batch[:32])
    return {"data": [wire.indexing_status_body(d) for d in documents]}


# --- Segments ------------------------------------------------------------------------------


class SegmentIn(Schema):
    content: str
    answer: str | None = None
    keywords: list[str] | None = None


class SegmentsCreateIn(Schema):
    segments: list[SegmentIn]


class SegmentUpdateFields(Schema):
    content: str | None = None
    answer: str | None = None
    keywords: list[str] | None = None
    enabled: bool | None = None
    regenerate_child_chunks: bool = False


class SegmentUpdateIn(Schema):
    segment: SegmentUpdateFields


_SEGMENTS = "/datasets/{uuid:dataset_id}/documents/{uuid:document_id}/segments"


@router.get(_SEGMENTS, response={200: dict})
def segment_list(request, dataset_id: UUID, document_id: UUID):
    _, document = _document(request, dataset_id, document_id)
    page, limit = _page_args(request)
    statuses = request.GET.getlist("status")
    enabled = None
    if request.GET.get("enabled") in ("true", "false"):
        enabled = request.GET["enabled"] == "true"
    found = selectors.segment_list(
        document=document,
        keyword=request.GET.get("keyword", ""),
        enabled=enabled,
        page=page,
        limit=limit,
    )
    items = found.items if not statuses or "completed" in statuses else []
    return wire.page_body(found, [wire.segment_body(s) for s in items], doc_form=document.doc_form)


def _payload(schema: type[Schema], request) -> Any:
    """The body checked against `schema`, after the ids were found (a foreign id is a 404
    whatever the body holds)."""
    try:
        return schema.model_validate(_json_body(request))
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        raise Invalid(
            f"{where}: {first.get('msg', 'invalid')}" if where else "Invalid body."
        ) from exc


@router.post(_SEGMENTS, response={200: dict})
def segment_create(request, dataset_id: UUID, document_id: UUID):
    _, document = _document(request, dataset_id, document_id)
    payload = _payload(SegmentsCreateIn, request)
    if not payload.segments:
        raise Invalid("segments must hold at least one segment.")
    created = [
        segments.segment_create(
            actor=request.membership,
            document=document,
            content=item.content,
            answer=item.answer or "",
            keywords=item.keywords,
        )
        for item in payload.segments
    ]
    return {"data": [wire.segment_body(s) for s in created], "doc_form": document.doc_form}


@router.get(_SEGMENTS + "/{uuid:segment_id}", response={200: dict})
def segment_detail(request, dataset_id: UUID, document_id: UUID, segment_id: UUID):
    _, document = _document(request, dataset_id, document_id)
    segment = selectors.segment_get(document=document, segment_id=segment_id)
    return {"data": wire.segment_body(segment), "doc_form": document.doc_form}


@router.post(_SEGMENTS + "/{uuid:segment_id}", response={200: dict})
def segment_update(request, dataset_id: UUID, document_id: UUID, segment_id: UUID):
    _, document = _document(request, dataset_id, document_id)
    segment = selectors.segment_get(document=document, segment_id=segment_id)
    payload = _payload(SegmentUpdateIn, request)
    fields = payload.segment
    segments.segment_update(
        actor=request.membership,
        segment=segment,
        content=fields.content,
        answer=fields.answer,
        keywords=fields.keywords,
        enabled=fields.enabled,
    )
    segment = selectors.segment_get(document=document, segment_id=segment_id)
    return {"data": wire.segment_body(segment), "doc_form": document.doc_form}


@router.delete(_SEGMENTS + "/{uuid:segment_id}")
def segment_delete(request, dataset_id: UUID, document_id: UUID, segment_id: UUID):
    _, document = _document(request, dataset_id, document_id)
    segment = selectors.segment_get(document=document, segment_id=segment_id)
    segments.segment_delete(actor=request.membership, segment=segment)
    return _no_content()


# --- Retrieval -----------------------------------------------------------------------------


@router.post("/datasets/{uuid:dataset_id}/retrieve", response={200: dict})
def dataset_retrieve(request, dataset_id: UUID):
    dataset = _dataset(request, dataset_id)
    body = _json_body(request)
    query = _str(body, "query", required=True)
    if len(query) > QUERY_MAX:
        raise Invalid(f"The query can be at most {QUERY_MAX} characters.")
    result = hit_testing.hit_testing(
        actor=None,  # the key was checked; the query is recorded as the API's
        dataset=dataset,
        query=query,
        retrieval_model=_obj(body, "retrieval_model"),
        source="api",
    )
    return result.to_dify()


_alias("/datasets/{uuid:dataset_id}/hit-testing", dataset_retrieve, "dataset_hit_testing")
