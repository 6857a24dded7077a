"""Retrieval over real rows in Postgres: each search method ranks what a user would expect
first, and only chunks a user may see and has switched on are ever returned."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.core.errors import NotFound
from apps.datasets import retrieval
from apps.datasets.models import IndexingStatus, IndexingTechnique
from apps.datasets.retrieval import InvalidRetrievalModel, retrieve
from apps.datasets.vector_index import index_name
from apps.datasets.wire import retrieve_record_body
from apps.providers import services
from apps.tenants.models import Role
from tests.datasets.conftest import (
    SEARCH_DIMENSION,
    add_document,
    add_parent_child_document,
    connect_openai,
    make_search_dataset,
    segment_of,
)
from tests.fakes.rerankers import JINA_KEY, FakeJina, fake_relevance

PASSWORD = "To reset your password, open Settings, choose Security and press Reset password."
INVOICES = "Invoices are sent on the first day of each month. Download past invoices from Billing."
TWO_FACTOR = "Two-factor authentication asks for a code from your phone app when you sign in."
EXPORT = "Export your data as CSV from the Reports page; large exports arrive by email."
HOLIDAYS = "Our office is closed on public holidays; support answers within one business day."
HELP = [PASSWORD, INVOICES, TWO_FACTOR, EXPORT, HOLIDAYS]

# Model calls resolve credentials on worker threads, which see only committed rows.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def help_centre(ready):
    dataset = make_search_dataset(ready)
    add_document(dataset, HELP)
    return dataset


def contents(records) -> list[str]:
    return [r.segment.content for r in records]


def search(dataset, query, **retrieval_model):
    return retrieve(
        workspace=dataset.workspace,
        datasets=[dataset],
        query=query,
        retrieval_model=retrieval_model,
    )


# --- Each method ranks the answer first --------------------------------------------------


def test_semantic_search_puts_the_password_chunk_first_for_a_password_question(help_centre):
    records = search(help_centre, "how do I reset my password", search_method="semantic_search")

    assert contents(records)[0] == PASSWORD
    assert len(records) == 4  # Dify's default top_k
    scores = [r.score for r in records]
    assert scores == sorted(scores, reverse=True)
    assert 0.5 < scores[0] <= 1.0 and scores[1] < 0.3


def test_semantic_search_embeds_the_query_with_the_datasets_model(help_centre, embedder):
    search(help_centre, "how do I reset my password", search_method="semantic_search")

    sent = [r.json() for r in embedder.requests if r.path == "/v1/embeddings"]
    assert sent == [{"model": "text-embedding-3-small", "input": ["how do I reset my password"]}]


def test_full_text_search_finds_stemmed_words_and_scores_by_share_of_words(help_centre):
    records = search(help_centre, "downloading invoice", search_method="full_text_search")

    assert contents(records) == [INVOICES]  # only chunks holding a query word come back
    assert 0.75 <= records[0].score <= 1.0  # it holds every word


def test_full_text_search_ranks_a_chunk_with_more_of_the_words_higher(help_centre):
    records = search(help_centre, "reset password email", search_method="full_text_search")

    assert contents(records) == [PASSWORD, EXPORT]
    assert records[0].score > 0.5  # two of three words
    assert records[1].score <= 1 / 3  # one of three


def test_full_text_search_with_only_stop_words_finds_nothing(help_centre):
    assert search(help_centre, "how do I", search_method="full_text_search") == []


def test_hybrid_search_weighs_both_scores(help_centre):
    records = search(
        help_centre,
        "reset my password",
        search_method="hybrid_search",
        weights={
            "weight_type": "customized",
            "vector_setting": {"vector_weight": 0.6},
            "keyword_setting": {"keyword_weight": 0.4},
        },
    )

    top = records[0]
    assert top.segment.content == PASSWORD
    assert top.score == pytest.approx(0.6 * top.vector_score + 0.4 * top.keyword_score)
    # Chunks only the vector search found still get their (zero) keyword score.
    assert all(r.keyword_score == 0 for r in records[1:])


def test_hybrid_weights_decide_between_the_two_searches(ready):
    dataset = make_search_dataset(ready)
    only_billing = "billing"
    both_words = "email the billing team at the support desk during office hours"
    add_document(dataset, [only_billing, both_words])

    def first(vector_weight, keyword_weight):
        records = search(
            dataset,
            "billing email",
            search_method="hybrid_search",
            weights={
                "vector_setting": {"vector_weight": vector_weight},
                "keyword_setting": {"keyword_weight": keyword_weight},
            },
        )
        return records[0].segment.content

    assert first(1.0, 0.0) == only_billing  # closest embedding
    assert first(0.0, 1.0) == both_words  # holds both words


def test_reciprocal_rank_fusion_gives_first_in_both_lists_a_score_of_one(help_centre):
    records = search(
        help_centre,
        "reset password",
        search_method="hybrid_search",
        reranking_mode="reciprocal_rank_fusion",
    )

    assert contents(records)[0] == PASSWORD
    assert records[0].score == pytest.approx(1.0)
    # Second in the vector list and missing from the full-text one: 0.7 × 61/62.
    assert records[1].score == pytest.approx(0.7 * 61 / 62)


def test_hybrid_results_are_deduplicated(help_centre):
    records = search(help_centre, "reset password", search_method="hybrid_search", top_k=10)

    ids = [r.segment.id for r in records]
    assert len(ids) == len(set(ids)) == len(HELP)


# --- Threshold, top_k, the dataset's own settings --------------------------------------


def test_score_threshold_drops_weak_matches(help_centre):
    records = search(
        help_centre,
        "how do I reset my password",
        score_threshold_enabled=True,
        score_threshold=0.5,
    )
    assert contents(records) == [PASSWORD]

    assert (
        search(help_centre, "reset password", score_threshold_enabled=True, score_threshold=1) == []
    )


def test_threshold_is_ignored_unless_enabled(help_centre):
    records = search(help_centre, "reset password", score_threshold=0.99)
    assert len(records) == 4


def test_top_k_limits_the_records(help_centre):
    assert len(search(help_centre, "reset password", top_k=2)) == 2
    assert len(search(help_centre, "reset password", top_k=10)) == len(HELP)


def test_the_datasets_own_retrieval_model_applies_when_the_caller_gives_none(help_centre):
    help_centre.retrieval_model = {"search_method": "full_text_search", "top_k": 1}
    help_centre.save()

    records = retrieve(workspace=help_centre.workspace, datasets=[help_centre], query="invoices")

    assert contents(records) == [INVOICES]


# --- Rerank model ----------------------------------------------------------------------


@pytest.fixture
def jina(ready):
    with FakeJina() as fake:
        services.provider_credentials_save(
            actor=ready.members[Role.OWNER],
            provider="jina",
            credentials={"api_key": JINA_KEY, "base_url": f"{fake.url}/v1"},
        )
        fake.reset()
        yield fake


def test_a_rerank_model_orders_the_results_and_gives_the_scores(help_centre, jina):
    query = "email our support team"
    records = search(
        help_centre,
        query,
        search_method="semantic_search",
        top_k=3,
        reranking_enable=True,
        reranking_model={
            "reranking_provider_name": "langgenius/jina/jina",
            "reranking_model_name": "jina-reranker-v2-base-multilingual",
        },
    )

    # The fake scores the share of the query's words in the chunk: 2/4, 1/4, then none.
    assert contents(records)[:2] == [HOLIDAYS, EXPORT]
    assert [r.score for r in records] == [fake_relevance(query, t) for t in contents(records)]
    assert [r.score for r in records][:2] == [0.5, 0.25]
    sent = [r.json() for r in jina.requests if r.path == "/v1/rerank"]
    assert len(sent) == 1 and sent[0]["query"] == query and len(sent[0]["documents"]) == 5


def test_hybrid_reranks_with_the_model_only_when_on_and_not_weighted(help_centre, jina):
    model = {
        "reranking_provider_name": "jina",
        "reranking_model_name": "jina-reranker-v2-base-multilingual",
    }

    def hybrid(**fields):
        return search(help_centre, "reset password", search_method="hybrid_search", **fields)

    hybrid(reranking_model=model, reranking_mode="reranking_model")  # reranking off
    hybrid(reranking_model=model, reranking_enable=True, reranking_mode="weighted_score")
    assert not jina.requests

    records = hybrid(reranking_model=model, reranking_enable=True, reranking_mode="reranking_model")
    assert [r.path for r in jina.requests] == ["/v1/rerank"]
    assert records[0].score == fake_relevance("reset password", records[0].segment.content)


def test_hybrid_with_the_default_settings_of_a_new_dataset_fuses_by_weights(help_centre):
    # What the dataset services store for a new knowledge base, switched to hybrid.
    records = search(
        help_centre,
        "reset password",
        search_method="hybrid_search",
        reranking_enable=False,
        reranking_mode="reranking_model",
        reranking_model={"reranking_provider_name": "", "reranking_model_name": ""},
        weights=None,
    )

    top = records[0]
    assert top.segment.content == PASSWORD
    assert top.score == pytest.approx(0.7 * top.vector_score + 0.3 * top.keyword_score)


# --- What is searched ------------------------------------------------------------------


def test_document_filter_keeps_to_the_given_documents(ready):
    dataset = make_search_dataset(ready)
    add_document(dataset, [PASSWORD], name="old.md")
    newer = add_document(dataset, ["Reset a lost password from the sign-in page."], name="new.md")

    records = retrieve(
        workspace=dataset.workspace,
        datasets=[dataset],
        query="reset password",
        document_ids=[str(newer.id)],
    )

    assert [r.document.name for r in records] == ["new.md"]


def test_a_matching_child_chunk_returns_its_parent_as_context(ready):
    dataset = make_search_dataset(ready)
    parent_text = "Account security. " + PASSWORD + " " + TWO_FACTOR
    document = add_parent_child_document(
        dataset,
        {parent_text: [PASSWORD, TWO_FACTOR], "Billing. " + INVOICES: [INVOICES]},
    )

    records = search(dataset, "how do I reset my password", search_method="hybrid_search")

    first = records[0]
    assert first.segment.content == parent_text
    assert first.content == parent_text
    assert first.child_chunks[0].segment == segment_of(document, PASSWORD)
    assert first.score == first.child_chunks[0].score
    record = retrieve_record_body(first)
    assert record["segment"]["content"] == parent_text
    assert record["child_chunks"][0]["content"] == PASSWORD
    # Two children of one parent make one record, not two.
    assert len({r.segment.id for r in records}) == len(records) == 2


@pytest.mark.parametrize(
    "switch_off",
    [
        pytest.param(
            lambda doc: (
                segment_of(doc, PASSWORD)
                .__class__.objects.filter(content=PASSWORD)
                .update(enabled=False)
            ),
            id="segment-disabled",
        ),
        pytest.param(
            lambda doc: doc.__class__.objects.filter(pk=doc.pk).update(enabled=False),
            id="document-disabled",
        ),
        pytest.param(
            lambda doc: doc.__class__.objects.filter(pk=doc.pk).update(archived=True),
            id="document-archived",
        ),
        pytest.param(
            lambda doc: doc.__class__.objects.filter(pk=doc.pk).update(
                indexing_status=IndexingStatus.INDEXING
            ),
            id="document-still-indexing",
        ),
    ],
)
@pytest.mark.parametrize("method", ["semantic_search", "full_text_search", "hybrid_search"])
def test_switched_off_chunks_are_never_returned(ready, switch_off, method):
    dataset = make_search_dataset(ready)
    document = add_document(dataset, [PASSWORD], name="security.md")
    add_document(dataset, [INVOICES], name="billing.md")
    switch_off(document)

    records = search(dataset, "reset password", search_method=method, top_k=10)

    assert PASSWORD not in contents(records)


def test_a_disabled_parent_hides_its_children(ready):
    dataset = make_search_dataset(ready)
    document = add_parent_child_document(dataset, {"Security. " + PASSWORD: [PASSWORD]})
    document.segments.filter(parent=None).update(enabled=False)

    assert search(dataset, "reset password", top_k=10) == []


def test_another_workspaces_dataset_is_not_found(ready, other_team):
    foreign = make_search_dataset(other_team, name="Their secrets")
    add_document(foreign, [PASSWORD])

    with pytest.raises(NotFound):
        retrieve(workspace=ready.workspace, datasets=[foreign], query="reset password")


def test_another_workspaces_chunks_never_show_up(help_centre, other_team, embedder):
    connect_openai(other_team, embedder)
    foreign = make_search_dataset(other_team, name="Their secrets")
    add_document(foreign, ["Their vault password reset code is 7731."])

    records = search(help_centre, "password reset code", search_method="hybrid_search", top_k=10)

    assert all(r.segment.workspace_id == help_centre.workspace_id for r in records)
    assert "7731" not in " ".join(contents(records))


def test_an_economy_dataset_is_searched_by_full_text_without_an_embedding_call(ready, embedder):
    dataset = make_search_dataset(ready, indexing_technique=IndexingTechnique.ECONOMY)
    add_document(dataset, HELP)
    embedder.reset()

    records = search(dataset, "reset my password", search_method="semantic_search")

    assert contents(records) == [PASSWORD]
    assert records[0].score >= 0.75
    assert not [r for r in embedder.requests if r.path == "/v1/embeddings"]


def test_semantic_search_uses_the_hnsw_index_of_the_embedding_width(help_centre):
    with CaptureQueriesContext(connection) as captured:
        search(help_centre, "reset password", search_method="semantic_search")
    nearest = next(q["sql"] for q in captured.captured_queries if "<=>" in q["sql"])

    with transaction.atomic(), connection.cursor() as cursor:
        # A handful of rows: make the planner prefer any index order to scanning and
        # sorting, so the plan shows whether the query can use the width's HNSW index.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"EXPLAIN {nearest}")
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert index_name(SEARCH_DIMENSION) in plan


# --- Bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retrieval_model", "says"),
    [
        ({"search_method": "fuzzy"}, "search_method"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": "4"}, "top_k"),
        ({"score_threshold_enabled": True, "score_threshold": 2}, "score_threshold"),
        ({"weights": {"vector_setting": {"vector_weight": -1}}}, "weight"),
        ({"reranking_enable": True}, "rerank model"),
        ({"reranking_mode": "magic"}, "reranking_mode"),
    ],
    ids=["method", "top_k-zero", "top_k-text", "threshold", "weight", "no-rerank-model", "mode"],
)
def test_a_wrong_retrieval_model_says_what_is_wrong(help_centre, retrieval_model, says):
    with pytest.raises(InvalidRetrievalModel, match=says) as caught:
        search(help_centre, "reset password", **retrieval_model)
    assert caught.value.status == 400


def test_an_empty_query_is_refused(help_centre):
    with pytest.raises(InvalidRetrievalModel, match="query"):
        search(help_centre, "   ")


def test_keyword_search_is_full_text(help_centre):
    settings = retrieval.RetrievalSettings.parse({"search_method": "keyword_search"})
    assert settings.search_method == "full_text_search"
