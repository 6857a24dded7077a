"""Hit testing: a member tries a query, sees ranked chunks with scores and sources in
Dify's /retrieve shape, and the query lands in the knowledge base's history."""

from __future__ import annotations

import pytest

from apps.core.errors import NotFound, PermissionDenied
from apps.datasets.hit_testing import dataset_query_history, hit_testing
from apps.datasets.models import DatasetQuery
from apps.datasets.retrieval import InvalidRetrievalModel
from apps.tenants.models import Role
from tests.datasets.conftest import add_document, make_search_dataset

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "To reset your password, open Settings, choose Security and press Reset password."
INVOICES = "Invoices are sent on the first day of each month. Download past invoices from Billing."


@pytest.fixture
def dataset(ready):
    dataset = make_search_dataset(ready)
    add_document(dataset, [PASSWORD, INVOICES], name="faq.md")
    return dataset


def test_hit_testing_returns_ranked_records_in_difys_shape(ready, dataset):
    result = hit_testing(
        actor=ready.members[Role.EDITOR], dataset=dataset, query="reset my password"
    )

    body = result.to_dify()
    assert body["query"] == {"content": "reset my password"}
    first = body["records"][0]
    assert first["segment"]["content"] == PASSWORD
    assert first["segment"]["document"]["name"] == "faq.md"
    assert first["segment"]["document"]["data_source_type"] == "text"
    assert first["segment"]["position"] == 1
    assert first["segment"]["enabled"] is True
    assert first["child_chunks"] == [] and first["tsne_position"] is None
    assert body["records"][0]["score"] > body["records"][1]["score"]
    expected = {"id", "position", "document_id", "content", "answer", "word_count", "tokens"}
    assert expected | {"keywords", "hit_count", "enabled", "status", "document"} <= set(
        first["segment"]
    )


def test_hit_testing_records_the_query_in_the_history(ready, dataset):
    editor = ready.members[Role.EDITOR]
    hit_testing(actor=editor, dataset=dataset, query="first question")
    hit_testing(actor=None, dataset=dataset, query="from the api", source=DatasetQuery.Source.API)

    history = list(dataset_query_history(workspace=ready.workspace, dataset=dataset))

    assert [(q.content, q.source) for q in history] == [
        ("from the api", "api"),
        ("first question", "hit_testing"),
    ]
    assert history[1].created_by == editor.user


def test_hit_testing_uses_a_given_retrieval_model(ready, dataset):
    result = hit_testing(
        actor=ready.members[Role.OWNER],
        dataset=dataset,
        query="invoices",
        retrieval_model={"search_method": "full_text_search", "top_k": 3},
    )

    assert [r.segment.content for r in result.records] == [INVOICES]


def test_a_member_of_another_workspace_gets_not_found(dataset, other_team):
    with pytest.raises(NotFound):
        hit_testing(actor=other_team.members[Role.OWNER], dataset=dataset, query="password")
    assert not DatasetQuery.objects.exists()


def test_a_role_without_knowledge_access_is_refused(ready, dataset):
    with pytest.raises(PermissionDenied):
        hit_testing(actor=ready.members[Role.NORMAL], dataset=dataset, query="password")


def test_a_query_over_250_characters_is_refused_and_not_recorded(ready, dataset):
    with pytest.raises(InvalidRetrievalModel, match="250"):
        hit_testing(actor=ready.members[Role.OWNER], dataset=dataset, query="word " * 60)
    assert not DatasetQuery.objects.exists()


def test_history_of_another_workspace_is_empty(dataset, other_team):
    hit_testing(actor=None, dataset=dataset, query="password")

    assert not dataset_query_history(workspace=other_team.workspace, dataset=dataset).exists()
