"""The Knowledge API at /v1/datasets: Dify's shapes, errors and keys."""

import httpx
import pytest
from django.test import Client

from apps.datasets.models import Dataset, Document, IndexingStatus
from apps.tenants.models import ApiKey, ApiKeyScope, Role
from apps.tenants.services import api_key_create
from tests.datasets.knowledge_client import knowledge_client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def knowledge_api(team):
    return knowledge_client_for(team)


@pytest.fixture
def other_knowledge_api(other_team):
    return knowledge_client_for(other_team)


DATASET_FIELDS = {
    "id", "name", "description", "provider", "permission", "data_source_type",
    "indexing_technique", "app_count", "document_count", "word_count", "created_by",
    "created_at", "updated_by", "updated_at", "embedding_model", "embedding_model_provider",
    "embedding_available", "retrieval_model_dict", "tags", "doc_form",
}  # fmt: skip
SEMANTIC = {"search_method": "semantic_search"}
TOP_K_99 = {"search_method": "full_text_search", "top_k": 99}
PAGE_FIELDS = {"data", "has_more", "limit", "total", "page"}


def create(api, **body):
    body.setdefault("name", "Handbook")
    body.setdefault("indexing_technique", "economy")
    return api.post("/datasets", body)


def test_create_get_list_update_delete_a_dataset(knowledge_api, team):
    created = create(knowledge_api, description="What we know", permission="all_team_members")
    assert created.status_code == 200, created.content
    body = created.json()
    assert set(body) >= DATASET_FIELDS
    assert body["name"] == "Handbook"
    assert body["indexing_technique"] == "economy"
    assert body["permission"] == "all_team_members"
    assert body["document_count"] == 0
    assert body["provider"] == "vendor"
    assert isinstance(body["created_at"], int)
    assert body["retrieval_model_dict"]["search_method"] == "full_text_search"
    dataset_id = body["id"]

    fetched = knowledge_api.get(f"/datasets/{dataset_id}")
    assert fetched.status_code == 200 and fetched.json()["id"] == dataset_id

    listed = knowledge_api.get("/datasets", {"page": 1, "limit": 20}).json()
    assert set(listed) == PAGE_FIELDS
    assert listed["total"] == 1 and listed["has_more"] is False
    assert [d["id"] for d in listed["data"]] == [dataset_id]

    patched = knowledge_api.patch(
        f"/datasets/{dataset_id}",
        {
            "name": "Handbook v2",
            "retrieval_model": {"search_method": "full_text_search", "top_k": 7},
        },
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["name"] == "Handbook v2"
    assert patched.json()["retrieval_model_dict"]["top_k"] == 7

    assert knowledge_api.delete(f"/datasets/{dataset_id}").status_code == 204
    assert knowledge_api.get(f"/datasets/{dataset_id}").status_code == 404
    assert not Dataset.objects.for_workspace(team.workspace).exists()


def test_list_pages_and_searches(knowledge_api):
    for n in range(5):
        create(knowledge_api, name=f"Base {n}")
    first = knowledge_api.get("/datasets", {"page": 1, "limit": 2}).json()
    assert (first["total"], first["has_more"], first["limit"], first["page"]) == (5, True, 2, 1)
    last = knowledge_api.get("/datasets", {"page": 3, "limit": 2}).json()
    assert len(last["data"]) == 1 and last["has_more"] is False
    found = knowledge_api.get("/datasets", {"keyword": "base 3"}).json()
    assert [d["name"] for d in found["data"]] == ["Base 3"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": ""}, 400, "invalid_param"),
        ({"name": "x" * 41}, 400, "invalid_param"),
        ({"name": "Ok", "permission": "everyone"}, 400, "invalid_param"),
        ({"name": "Ok", "indexing_technique": "cheap"}, 400, "invalid_param"),
        ({"name": "Ok", "indexing_technique": "high_quality"}, 400, "invalid_param"),
        ({"name": "Ok", "retrieval_model": SEMANTIC}, 400, "invalid_param"),
        ({"name": "Ok", "retrieval_model": TOP_K_99}, 400, "invalid_param"),
        ({"name": "Ok", "retrieval_model": "fast"}, 400, "invalid_param"),
        ({"name": ["a"]}, 400, "invalid_param"),
        ({"name": "Handbook"}, 409, "dataset_name_duplicate"),
    ],
    ids=[
        "empty-name", "long-name", "bad-permission", "bad-technique", "no-embedding-model",
        "semantic-on-economy", "top-k", "retrieval-not-object", "name-list", "duplicate",
    ],
)  # fmt: skip
def test_bad_input_is_a_dify_error(knowledge_api, body, status, code):
    create(knowledge_api)
    response = knowledge_api.post("/datasets", {"indexing_technique": "economy", **body})
    assert response.status_code == status, response.content
    error = response.json()
    assert error["code"] == code and error["status"] == status and error["message"]


def test_broken_json_and_bad_paging_are_400(knowledge_api):
    raw = knowledge_api.client.post("/v1/datasets", b"{", content_type="application/json")
    assert raw.status_code == 400 and raw.json()["code"] == "invalid_param"
    assert knowledge_api.get("/datasets", {"limit": 1000}).status_code == 400
    assert knowledge_api.get("/datasets", {"page": "x"}).status_code == 400


def test_keys_of_other_scopes_and_revoked_keys_are_refused(team, knowledge_api):
    _, management = api_key_create(actor=team.members[Role.OWNER], name="mgmt")
    refused = Client(headers={"Authorization": f"Bearer {management}"}).get("/v1/datasets")
    assert refused.status_code == 401
    assert refused.json() == {
        "code": "unauthorized",
        "message": refused.json()["message"],
        "status": 401,
    }
    assert Client().get("/v1/datasets").status_code == 401
    ApiKey.objects.filter(scope=ApiKeyScope.DATASET).update(revoked_at="2026-01-01T00:00Z")
    assert knowledge_api.get("/datasets").status_code == 401


def test_another_workspace_key_sees_404_for_every_id(knowledge_api, other_knowledge_api, team):
    dataset_id = create(knowledge_api).json()["id"]
    dataset = Dataset.objects.get(pk=dataset_id)
    document = Document.objects.create(
        workspace=team.workspace,
        dataset=dataset,
        name="notes.txt",
        data_source_type="text",
        batch="b1",
        indexing_status=IndexingStatus.COMPLETED,
    )
    for path in (
        f"/datasets/{dataset_id}",
        f"/datasets/{dataset_id}/documents",
        f"/datasets/{dataset_id}/documents/{document.id}",
        f"/datasets/{dataset_id}/documents/b1/indexing-status",
        f"/datasets/{dataset_id}/documents/{document.id}/segments",
    ):
        response = other_knowledge_api.get(path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"
    assert other_knowledge_api.delete(f"/datasets/{dataset_id}").status_code == 404
    assert other_knowledge_api.patch(f"/datasets/{dataset_id}", {"name": "Mine"}).status_code == 404
    assert other_knowledge_api.get("/datasets").json()["total"] == 0
    assert Dataset.objects.get(pk=dataset_id).name == "Handbook"


def test_documents_list_detail_and_indexing_status_shapes(knowledge_api, team):
    dataset = Dataset.objects.get(pk=create(knowledge_api).json()["id"])
    document = Document.objects.create(
        workspace=team.workspace,
        dataset=dataset,
        name="notes.txt",
        data_source_type="upload_file",
        batch="20260101000000123456",
        indexing_status=IndexingStatus.INDEXING,
        completed_segments=3,
        total_segments=10,
    )
    listed = knowledge_api.get(f"/datasets/{dataset.id}/documents").json()
    assert set(listed) == PAGE_FIELDS
    row = listed["data"][0]
    assert row["id"] == str(document.id)
    assert row["indexing_status"] == "indexing"
    assert row["display_status"] == "indexing"
    assert row["data_source_type"] == "upload_file"
    detail = knowledge_api.get(f"/datasets/{dataset.id}/documents/{document.id}").json()
    assert detail["name"] == "notes.txt"
    status = knowledge_api.get(
        f"/datasets/{dataset.id}/documents/{document.batch}/indexing-status"
    ).json()
    assert status["data"][0]["completed_segments"] == 3
    assert status["data"][0]["total_segments"] == 10
    assert set(status["data"][0]) == {
        "id", "indexing_status", "processing_started_at", "parsing_completed_at",
        "cleaning_completed_at", "splitting_completed_at", "completed_at", "paused_at",
        "error", "stopped_at", "completed_segments", "total_segments",
    }  # fmt: skip
    missing = knowledge_api.get(f"/datasets/{dataset.id}/documents/nobatch/indexing-status")
    assert missing.status_code == 404


def test_dataset_keys_through_the_management_api(team):
    _, management = api_key_create(actor=team.members[Role.OWNER], name="mgmt")
    api = Client(headers={"Authorization": f"Bearer {management}"})
    created = api.post("/api/dataset-keys", {"name": "ingest"}, content_type="application/json")
    assert created.status_code == 201
    raw = created.json()["key"]
    listed = api.get("/api/dataset-keys").json()
    assert [k["name"] for k in listed] == ["ingest"]
    assert "key" not in listed[0]
    assert Client(headers={"Authorization": f"Bearer {raw}"}).get("/v1/datasets").status_code == 200
    assert api.delete(f"/api/dataset-keys/{listed[0]['id']}").status_code == 204
    assert Client(headers={"Authorization": f"Bearer {raw}"}).get("/v1/datasets").status_code == 401
    bad = api.post("/api/dataset-keys", {"name": ""}, content_type="application/json")
    assert bad.status_code == 400


def test_the_knowledge_api_over_real_http(live_server_url, transactional_db, team):
    from apps.datasets.services.datasets import dataset_api_key_create

    _, raw = dataset_api_key_create(actor=team.members[Role.OWNER], name="http")
    headers = {"Authorization": f"Bearer {raw}"}
    with httpx.Client(base_url=f"{live_server_url}/v1", headers=headers, timeout=10) as http:
        created = http.post(
            "/datasets", json={"name": "Over the wire", "indexing_technique": "economy"}
        )
        assert created.status_code == 200, created.text
        dataset_id = created.json()["id"]
        assert http.get("/datasets").json()["data"][0]["id"] == dataset_id
        duplicate = http.post(
            "/datasets", json={"name": "Over the wire", "indexing_technique": "economy"}
        )
        assert duplicate.status_code == 409
        assert duplicate.json()["code"] == "dataset_name_duplicate"
        # create-by-file: a real multipart body with `data` as a JSON string, as Dify's
        # clients send it.
        upload = http.post(
            f"/datasets/{dataset_id}/document/create-by-file",
            files={"file": ("notes.txt", b"Tides turn twice a day.", "text/plain")},
            data={
                "data": '{"indexing_technique": "economy", "process_rule": {"mode": "automatic"}}'
            },
        )
        assert upload.status_code == 200, upload.text
        batch = upload.json()["batch"]
        assert upload.json()["document"]["name"] == "notes.txt"
        status = http.get(f"/datasets/{dataset_id}/documents/{batch}/indexing-status").json()
        assert status["data"][0]["id"] == upload.json()["document"]["id"]
        assert status["data"][0]["indexing_status"] in (
            "waiting",
            "parsing",
            "indexing",
            "completed",
        )
        assert http.delete(f"/datasets/{dataset_id}").status_code == 204


def test_document_status_enable_disable_archive(knowledge_api, team, other_team):
    dataset = Dataset.objects.get(pk=create(knowledge_api).json()["id"])
    document = Document.objects.create(
        workspace=team.workspace,
        dataset=dataset,
        name="notes.txt",
        data_source_type="text",
        batch="b1",
        indexing_status=IndexingStatus.COMPLETED,
    )
    base = f"/datasets/{dataset.id}/documents"
    ids = {"document_ids": [str(document.id)]}
    assert knowledge_api.patch(f"{base}/status/disable", ids).json() == {"result": "success"}
    assert knowledge_api.get(f"{base}/{document.id}").json()["display_status"] == "disabled"
    knowledge_api.patch(f"{base}/status/enable", ids)
    knowledge_api.patch(f"{base}/status/archive", ids)
    assert knowledge_api.get(f"{base}/{document.id}").json()["display_status"] == "archived"
    knowledge_api.patch(f"{base}/status/un_archive", ids)
    assert knowledge_api.get(f"{base}/{document.id}").json()["display_status"] == "available"
    assert knowledge_api.patch(f"{base}/status/archive", {"document_ids": []}).status_code == 400
    foreign = Document.objects.create(
        workspace=other_team.workspace,
        dataset=Dataset.objects.create(workspace=other_team.workspace, name="Theirs"),
        name="theirs.txt",
        data_source_type="text",
        batch="b2",
    )
    missing = knowledge_api.patch(f"{base}/status/archive", {"document_ids": [str(foreign.id)]})
    assert missing.status_code == 404
    assert knowledge_api.patch(f"{base}/status/archive", {"document_ids": ["x"]}).status_code == 404
    foreign.refresh_from_db()
    assert foreign.archived is False
