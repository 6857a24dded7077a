"""The Knowledge API's documents and segments: created by text and by file, indexed by real
worker threads, listed, changed and deleted, in Dify's shapes."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.datasets.models import Document, IndexingStatus
from tests.datasets.conftest import wait_for
from tests.datasets.knowledge_client import knowledge_client_for

pytestmark = pytest.mark.django_db(transaction=True)

INVALID = "invalid_param"
TEXT = "Lighthouses guide ships at night.\n\nThe keeper trims the wick at dusk."


@pytest.fixture
def api(team):
    return knowledge_client_for(team)


def _completed(document_id, workers) -> Document:
    workers.drain()
    return wait_for(Document.objects.get(pk=document_id), IndexingStatus.COMPLETED)


def test_create_by_text_then_follow_the_batch_to_completed(api, economy_dataset, workers):
    base = f"/datasets/{economy_dataset.id}"
    created = api.post(
        f"{base}/document/create-by-text",
        {"name": "Keeper notes", "text": TEXT, "indexing_technique": "economy",
         "process_rule": {"mode": "automatic"}},
    )  # fmt: skip
    assert created.status_code == 200, created.content
    body = created.json()
    assert set(body) == {"document", "batch"}
    assert body["document"]["name"] == "Keeper notes"
    assert body["document"]["indexing_status"] == "waiting"
    assert body["document"]["display_status"] == "queuing"
    document = _completed(body["document"]["id"], workers)

    status = api.get(f"{base}/documents/{body['batch']}/indexing-status").json()["data"][0]
    assert status["indexing_status"] == "completed"
    assert status["completed_segments"] == status["total_segments"] == document.total_segments
    assert isinstance(status["completed_at"], float)

    listed = api.get(f"{base}/documents", {"keyword": "keeper"}).json()
    assert listed["total"] == 1 and listed["data"][0]["display_status"] == "available"

    # The alias Dify keeps answers too.
    alias = api.post(f"{base}/document/create_by_text", {"name": "Second", "text": "More text."})
    assert alias.status_code == 200


def test_create_by_file_with_data_as_a_json_string(api, economy_dataset, workers):
    upload = SimpleUploadedFile("faq.md", b"# FAQ\n\nReset your password from the sign-in page.")
    response = api.post(
        f"/datasets/{economy_dataset.id}/document/create-by-file",
        data={
            "file": upload,
            "data": json.dumps(
                {"indexing_technique": "economy", "process_rule": {"mode": "automatic"}}
            ),
        },
    )
    assert response.status_code == 200, response.content
    document = _completed(response.json()["document"]["id"], workers)
    assert document.name == "faq.md"
    assert response.json()["document"]["data_source_type"] == "upload_file"


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("document/create-by-text", {"name": "x"}, "invalid_param"),
        ("document/create-by-text", {"text": "x"}, "invalid_param"),
        ("document/create-by-text", {"name": "x", "text": "y", "process_rule": "a"}, INVALID),
        ("document/create-by-text", {"name": "x", "text": "y", "indexing_technique": "z"}, INVALID),
        ("document/create-by-file", None, "no_file_uploaded"),
    ],
    ids=["no-text", "no-name", "rule-not-object", "bad-technique", "no-file"],
)  # fmt: skip
def test_bad_document_input_is_a_dify_400(api, economy_dataset, path, body, code):
    url = f"/datasets/{economy_dataset.id}/{path}"
    response = api.post(url, body) if body is not None else api.post(url, data={})
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert not Document.objects.filter(dataset=economy_dataset).exists()


def test_unsupported_file_is_a_415_with_a_clear_message(api, economy_dataset):
    response = api.post(
        f"/datasets/{economy_dataset.id}/document/create-by-file",
        data={"file": SimpleUploadedFile("tool.exe", b"MZ\x90\x00")},
    )
    assert response.status_code == 415  # Dify's unsupported_file_type
    assert response.json()["code"] == "unsupported_file_type"
    assert "tool.exe" in response.json()["message"]


def test_segments_list_create_get_update_delete(api, economy_dataset, workers):
    base = f"/datasets/{economy_dataset.id}"
    created = api.post(f"{base}/document/create-by-text", {"name": "Notes", "text": TEXT}).json()
    document = _completed(created["document"]["id"], workers)
    segments_url = f"{base}/documents/{document.id}/segments"

    listed = api.get(segments_url).json()
    assert set(listed) >= {"data", "doc_form", "total", "has_more", "limit", "page"}
    assert listed["total"] == document.total_segments
    first = listed["data"][0]
    assert {"id", "position", "document_id", "content", "keywords", "enabled", "status"} <= set(
        first
    )

    added = api.post(
        segments_url, {"segments": [{"content": "Fog horns sound.", "keywords": ["fog"]}]}
    )
    assert added.status_code == 200, added.content
    segment = added.json()["data"][0]
    assert segment["content"] == "Fog horns sound." and segment["keywords"] == ["fog"]

    one = api.get(f"{segments_url}/{segment['id']}").json()
    assert one["data"]["id"] == segment["id"] and one["doc_form"] == "text_model"

    updated = api.post(
        f"{segments_url}/{segment['id']}",
        {"segment": {"content": "Fog horns sound loudly.", "enabled": False}},
    )
    assert updated.status_code == 200, updated.content
    assert updated.json()["data"]["content"] == "Fog horns sound loudly."
    assert updated.json()["data"]["enabled"] is False

    bad = api.post(f"{segments_url}/{segment['id']}", {"segment": {"content": ""}})
    assert bad.status_code == 400
    assert api.post(segments_url, {"segments": []}).status_code == 400
    assert api.post(segments_url, {"nothing": 1}).status_code == 400

    assert api.delete(f"{segments_url}/{segment['id']}").status_code == 204
    assert api.get(f"{segments_url}/{segment['id']}").status_code == 404


def test_update_by_text_keeps_the_id_and_reindexes(api, economy_dataset, workers):
    base = f"/datasets/{economy_dataset.id}"
    created = api.post(f"{base}/document/create-by-text", {"name": "Notes", "text": TEXT}).json()
    document_id = created["document"]["id"]
    _completed(document_id, workers)
    updated = api.post(
        f"{base}/documents/{document_id}/update-by-text",
        {"name": "Notes v2", "text": "Only one new sentence about tides."},
    )
    assert updated.status_code == 200, updated.content
    assert updated.json()["document"]["id"] == document_id
    document = _completed(document_id, workers)
    assert document.name == "Notes v2"
    segments = api.get(f"{base}/documents/{document_id}/segments").json()["data"]
    assert [s["content"] for s in segments] == ["Only one new sentence about tides."]

    file_update = api.post(
        f"{base}/documents/{document_id}/update-by-file",
        data={"file": SimpleUploadedFile("tides.txt", b"Tides turn twice a day.")},
    )
    assert file_update.status_code == 200, file_update.content
    document = _completed(document_id, workers)
    assert document.name == "tides.txt"

    assert api.delete(f"{base}/documents/{document_id}").status_code == 204
    assert api.get(f"{base}/documents/{document_id}").status_code == 404


def test_retrieve_returns_difys_records(api, economy_dataset, workers, other_team):
    base = f"/datasets/{economy_dataset.id}"
    created = api.post(f"{base}/document/create-by-text", {"name": "Notes", "text": TEXT}).json()
    _completed(created["document"]["id"], workers)
    body = {"query": "keeper wick", "retrieval_model": {"search_method": "full_text_search",
            "top_k": 2, "reranking_enable": False, "score_threshold_enabled": False}}  # fmt: skip
    response = api.post(f"{base}/retrieve", body)
    assert response.status_code == 200, response.content
    result = response.json()
    assert result["query"] == {"content": "keeper wick"}
    top = result["records"][0]
    assert set(top) >= {"segment", "score", "child_chunks", "tsne_position"}
    assert "The keeper trims the wick at dusk." in top["segment"]["content"]
    assert top["segment"]["document"]["name"] == "Notes"
    assert 0 < top["score"] <= 1
    assert api.post(f"{base}/hit-testing", body).status_code == 200
    assert api.post(f"{base}/retrieve", {"query": "x" * 251}).status_code == 400
    assert api.post(f"{base}/retrieve", {}).json()["code"] == "invalid_param"
    outsider = knowledge_client_for(other_team)
    assert outsider.post(f"{base}/retrieve", body).status_code == 404
