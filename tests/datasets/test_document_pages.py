"""Documents and chunks on the knowledge pages, indexed by real Dramatiq worker threads."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.datasets.models import DatasetPermission, Document, IndexingStatus, Segment
from apps.tenants.models import Role
from tests.datasets.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

TEXT = "Lighthouses guide ships at night.\n\nThe keeper trims the wick at dusk."


@pytest.fixture
def economy_dataset(economy_dataset):
    """The economy dataset shared with the whole team, so its dataset operator sees it."""
    economy_dataset.permission = DatasetPermission.ALL_TEAM_MEMBERS
    economy_dataset.save(update_fields=["permission"])
    return economy_dataset


def upload(name, body):
    return SimpleUploadedFile(name, body.encode(), content_type="text/plain")


def test_upload_many_files_and_watch_them_complete(team, economy_dataset, workers):
    owner = team.client(Role.DATASET_OPERATOR)
    url = f"/knowledge/{economy_dataset.id}/documents/new/"
    response = owner.post(
        url,
        {
            "source": "file",
            "mode": "automatic",
            "files": [upload("a.txt", TEXT), upload("b.md", "# B\n\nSecond file.")],
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    documents = list(Document.objects.for_workspace(team.workspace).order_by("name"))
    assert [d.name for d in documents] == ["a.txt", "b.md"]
    assert documents[0].batch == documents[1].batch

    # While indexing, the table asks to be polled; once done it stops asking.
    listing = owner.get(f"/knowledge/{economy_dataset.id}/", headers={"HX-Request": "true"})
    workers.drain()
    for document in documents:
        assert wait_for(document, IndexingStatus.COMPLETED).indexing_status == "completed"
    partial = owner.get(
        f"/knowledge/{economy_dataset.id}/?partial=table", headers={"HX-Request": "true"}
    ).content.decode()
    assert "Completed" in partial and "hx-trigger" not in partial
    assert "<html" not in partial
    assert listing.status_code == 200


def test_unsupported_or_missing_files_are_form_errors(team, economy_dataset):
    owner = team.client()
    url = f"/knowledge/{economy_dataset.id}/documents/new/"
    bad = owner.post(url, {"source": "file", "mode": "automatic", "files": [upload("x.exe", "MZ")]})
    assert bad.status_code == 400
    assert "x.exe" in bad.content.decode()
    none = owner.post(url, {"source": "file", "mode": "automatic"})
    assert none.status_code == 400 and "Choose at least one file" in none.content.decode()
    rules = owner.post(
        url, {"source": "text", "mode": "custom", "max_tokens": "5", "name": "n", "text": "t"}
    )
    assert rules.status_code == 400
    assert not Document.objects.for_workspace(team.workspace).exists()


def test_paste_text_and_preview_first_chunks(team, economy_dataset):
    owner = team.client()
    preview = owner.post(
        f"/knowledge/{economy_dataset.id}/documents/preview/",
        {"source": "text", "mode": "custom", "separator": "\\n\\n", "max_tokens": "50",
         "chunk_overlap": "0", "text": TEXT, "name": "Notes"},
    )  # fmt: skip
    body = preview.content.decode()
    assert preview.status_code == 200
    assert "First 2 chunks" in body and "The keeper trims the wick" in body
    assert not Document.objects.for_workspace(team.workspace).exists()  # nothing stored
    added = owner.post(
        f"/knowledge/{economy_dataset.id}/documents/new/",
        {"source": "text", "mode": "automatic", "name": "Keeper notes", "text": TEXT},
    )
    assert added.status_code == 302
    assert Document.objects.for_workspace(team.workspace).get().name == "Keeper notes"


def test_a_private_url_is_refused_as_a_form_error(team, economy_dataset):
    response = team.client().post(
        f"/knowledge/{economy_dataset.id}/documents/new/",
        {"source": "url", "mode": "automatic", "url": "http://169.254.169.254/latest/"},
    )
    assert response.status_code == 400
    assert not Document.objects.for_workspace(team.workspace).exists()


def _indexed(team, dataset, workers) -> Document:
    team.client().post(
        f"/knowledge/{dataset.id}/documents/new/",
        {"source": "text", "mode": "automatic", "name": "Keeper notes", "text": TEXT},
    )
    document = Document.objects.for_workspace(team.workspace).get()
    workers.drain()
    return wait_for(document, IndexingStatus.COMPLETED)


def test_document_actions_disable_enable_reindex_and_delete(team, economy_dataset, workers):
    document = _indexed(team, economy_dataset, workers)
    owner = team.client()
    base = f"/knowledge/{economy_dataset.id}/documents/{document.id}"
    owner.post(f"{base}/disable/", {"from": "list"})
    document.refresh_from_db()
    assert document.enabled is False
    owner.post(f"{base}/enable/")
    document.refresh_from_db()
    assert document.enabled is True
    retry = owner.post(f"{base}/retry/", follow=True)  # not failed: a message, not a 500
    assert retry.status_code == 200 and "cannot retry" in retry.content.decode()
    owner.post(f"{base}/reindex/")
    workers.drain()
    assert wait_for(document, IndexingStatus.COMPLETED).enabled
    assert Segment.objects.filter(document=document).count() == document.total_segments
    member = team.client(Role.NORMAL)
    assert member.post(f"{base}/delete/").status_code == 403
    owner.post(f"{base}/delete/")
    assert not Document.objects.filter(pk=document.pk).exists()


def test_chunk_pages_search_add_edit_disable_delete(team, economy_dataset, workers):
    document = _indexed(team, economy_dataset, workers)
    owner = team.client(Role.DATASET_OPERATOR)
    page_url = f"/knowledge/{economy_dataset.id}/documents/{document.id}/"
    listing = owner.get(page_url).content.decode()
    assert "Lighthouses guide ships" in listing
    assert "No chunk matches" in owner.get(page_url, {"q": "zebra"}).content.decode()
    added = owner.post(
        page_url, {"content": "Fog horns sound in poor weather.", "keywords": "fog, horn"}
    )
    assert added.status_code == 302
    chunk = Segment.objects.get(document=document, content__startswith="Fog horns")
    assert chunk.keywords == ["fog", "horn"]
    edit = f"{page_url}chunks/{chunk.id}/"
    assert (
        owner.post(
            f"{edit}edit/", {"content": "Fog horns sound in fog.", "keywords": "fog"}
        ).status_code
        == 302
    )
    chunk.refresh_from_db()
    assert chunk.content == "Fog horns sound in fog."
    owner.post(f"{edit}disable/")
    chunk.refresh_from_db()
    assert chunk.enabled is False
    assert "Fog horns sound in fog." in owner.get(page_url, {"show": "disabled"}).content.decode()
    empty = owner.post(f"{edit}edit/", {"content": ""})
    assert empty.status_code == 400
    owner.post(f"{edit}delete/")
    assert not Segment.objects.filter(pk=chunk.pk).exists()


def test_hit_testing_ranks_chunks_and_keeps_the_history(team, economy_dataset, workers):
    _indexed(team, economy_dataset, workers)
    operator = team.client(Role.DATASET_OPERATOR)
    url = f"/knowledge/{economy_dataset.id}/hit-testing/"
    assert "No queries yet" in operator.get(url).content.decode()
    response = operator.post(
        url,
        {"query": "keeper wick", "rm-search_method": "full_text_search", "rm-top_k": "3"},
    )
    body = response.content.decode()
    assert response.status_code == 200, body[:2000]
    assert 'data-testid="hit"' in body
    assert "The keeper trims the wick at dusk." in body
    assert "Keeper notes" in body  # the source document
    assert 'data-testid="hit-score"' in body
    history = operator.get(url).content.decode()
    assert "keeper wick" in history.split('data-testid="query-history"')[1]
    too_long = operator.post(url, {"query": "x" * 300, "rm-search_method": "full_text_search",
                                   "rm-top_k": "3"})  # fmt: skip
    assert too_long.status_code == 400
    assert team.client(Role.NORMAL).get(url).status_code == 403


def test_switching_to_high_quality_reindexes_with_embeddings(
    embedding_ready, economy_dataset, workers
):
    team = embedding_ready
    document = _indexed(team, economy_dataset, workers)
    assert not Segment.objects.filter(document=document, embedding__isnull=False).exists()
    response = team.client().post(
        f"/knowledge/{economy_dataset.id}/settings/",
        {
            "name": economy_dataset.name,
            "permission": "all_team_members",
            "indexing_technique": "high_quality",
            "embedding_model": "openai/text-embedding-3-small",
            "search_method": "hybrid_search",
            "top_k": "4",
            "vector_weight": "0.6",
            "mode": "automatic",
        },
        follow=True,
    )
    assert "1 document is being re-indexed." in response.content.decode()
    economy_dataset.refresh_from_db()
    assert economy_dataset.retrieval_model["weights"]["keyword_setting"]["keyword_weight"] == 0.4
    workers.drain()
    wait_for(document, IndexingStatus.COMPLETED)
    assert Segment.objects.filter(document=document, embedding__isnull=False).exists()
