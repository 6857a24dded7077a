"""Retrieval for chat apps: the knowledge bases an app attaches (Dify's dataset_configs)
are searched, and the results come back as message_end's retriever_resources."""

from __future__ import annotations

import pytest

from apps.datasets.app_retrieval import retrieve_for_app
from apps.datasets.models import DatasetQuery, IndexingTechnique, Segment
from apps.providers import services
from apps.tenants.models import Role
from tests.datasets.conftest import add_document, add_parent_child_document, make_search_dataset
from tests.fakes.rerankers import JINA_KEY, FakeJina

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "To reset your password, open Settings, choose Security and press Reset password."
INVOICES = "Invoices are sent on the first day of each month. Download past invoices from Billing."
REFUNDS = "Refunds for a past invoice are paid back to the card within ten days."


def configs(*datasets, mode="multiple", **fields) -> dict:
    return {
        "retrieval_model": mode,
        "top_k": 4,
        **fields,
        "datasets": {
            "strategy": "router",
            "datasets": [{"dataset": {"enabled": True, "id": str(d.id)}} for d in datasets],
        },
    }


@pytest.fixture
def bases(ready):
    security = make_search_dataset(ready, name="Security")
    add_document(security, [PASSWORD], name="security.md")
    billing = make_search_dataset(
        ready, name="Billing", indexing_technique=IndexingTechnique.ECONOMY
    )
    add_document(billing, [INVOICES, REFUNDS], name="billing.md")
    return security, billing


def test_resources_carry_difys_fields_with_the_best_chunk_first(ready, bases):
    security, billing = bases

    resources = retrieve_for_app(
        workspace=ready.workspace,
        dataset_configs=configs(security, billing),
        query="reset password",
    )

    first = resources[0]
    segment = Segment.objects.get(content=PASSWORD)
    assert first == {
        "position": 1,
        "dataset_id": str(security.id),
        "dataset_name": "Security",
        "document_id": str(segment.document_id),
        "document_name": "security.md",
        "data_source_type": "text",
        "segment_id": str(segment.id),
        "retriever_from": "api",
        "score": first["score"],
        "hit_count": 1,
        "word_count": segment.word_count,
        "segment_position": 1,
        "index_node_hash": segment.content_hash,
        "content": PASSWORD,
        "page": None,
    }
    assert 0.5 < first["score"] <= 1
    assert [r["position"] for r in resources] == list(range(1, len(resources) + 1))


def test_multiple_mode_merges_every_attached_base(ready, bases):
    security, billing = bases

    resources = retrieve_for_app(
        workspace=ready.workspace,
        dataset_configs=configs(security, billing),
        query="refund for my invoice",
    )

    assert resources[0]["content"] == REFUNDS
    assert {r["dataset_name"] for r in resources} == {"Security", "Billing"}


def test_single_mode_answers_from_the_best_base_alone(ready, bases):
    security, billing = bases

    resources = retrieve_for_app(
        workspace=ready.workspace,
        dataset_configs=configs(security, billing, mode="single"),
        query="refund for my invoice",
    )

    assert {r["dataset_name"] for r in resources} == {"Billing"}


def test_each_returned_chunk_counts_a_hit_and_the_query_is_recorded(ready, bases):
    security, billing = bases
    config = configs(security, billing, top_k=1)

    retrieve_for_app(workspace=ready.workspace, dataset_configs=config, query="reset password")
    resources = retrieve_for_app(
        workspace=ready.workspace, dataset_configs=config, query="reset password"
    )

    assert resources[0]["hit_count"] == 2
    assert Segment.objects.get(content=PASSWORD).hit_count == 2
    assert Segment.objects.get(content=INVOICES).hit_count == 0
    assert DatasetQuery.objects.filter(source="app").count() == 4  # two bases, two queries


def test_threshold_and_top_k_of_the_app_apply(ready, bases):
    security, billing = bases

    only_one = retrieve_for_app(
        workspace=ready.workspace,
        dataset_configs=configs(security, billing, top_k=1),
        query="invoice",
    )
    strict = retrieve_for_app(
        workspace=ready.workspace,
        dataset_configs=configs(security, score_threshold_enabled=True, score_threshold=0.99),
        query="invoice",
    )

    assert len(only_one) == 1
    assert strict == []


def test_a_parent_child_match_cites_the_parent_as_content(ready):
    dataset = make_search_dataset(ready)
    parent = "Account security. " + PASSWORD
    add_parent_child_document(dataset, {parent: [PASSWORD]})

    resources = retrieve_for_app(
        workspace=ready.workspace, dataset_configs=configs(dataset), query="reset password"
    )

    assert [r["content"] for r in resources] == [parent]


def test_disabled_entries_and_other_workspaces_bases_are_never_searched(ready, bases, other_team):
    security, _ = bases
    foreign = make_search_dataset(
        other_team, name="Theirs", indexing_technique=IndexingTechnique.ECONOMY
    )
    add_document(foreign, ["Their password reset master code is 7731."])
    config = configs(foreign, security)
    config["datasets"]["datasets"].append({"dataset": {"enabled": False, "id": str(security.id)}})
    config["datasets"]["datasets"].append({"dataset": {"enabled": True, "id": "not-an-id"}})

    resources = retrieve_for_app(
        workspace=ready.workspace, dataset_configs=config, query="password reset code"
    )

    assert {r["dataset_name"] for r in resources} == {"Security"}
    assert not DatasetQuery.objects.filter(dataset=foreign).exists()


def test_no_attached_base_means_no_resources(ready):
    assert retrieve_for_app(workspace=ready.workspace, dataset_configs={}, query="hi") == []


def test_the_apps_rerank_model_orders_the_merged_results(ready, bases):
    security, billing = bases
    with FakeJina() as jina:
        services.provider_credentials_save(
            actor=ready.members[Role.OWNER],
            provider="jina",
            credentials={"api_key": JINA_KEY, "base_url": f"{jina.url}/v1"},
        )
        jina.reset()
        resources = retrieve_for_app(
            workspace=ready.workspace,
            dataset_configs=configs(
                security,
                billing,
                reranking_enable=True,
                reranking_mode="reranking_model",
                reranking_model={
                    "reranking_provider_name": "jina",
                    "reranking_model_name": "jina-reranker-v2-base-multilingual",
                },
            ),
            query="paid back to the card",
        )
        sent = [r.json() for r in jina.requests if r.path == "/v1/rerank"]

    # The semantic base's nearest chunk and the economy base's full-text match.
    assert len(sent) == 1 and sorted(sent[0]["documents"]) == sorted([PASSWORD, REFUNDS])
    assert resources[0]["content"] == REFUNDS
    assert resources[0]["score"] == 1.0  # every word of the query is in it
