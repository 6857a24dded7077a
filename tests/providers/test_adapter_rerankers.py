"""Jina, Voyage and TEI adapters against their fakes on real loopback ports; the local
sentence-transformers adapter against a stand-in module (and a real model when one is
installed and pointed to)."""

from __future__ import annotations

import asyncio
import os
import sys
import types

import pytest

from apps.providers.runtime import errors
from apps.providers.runtime.adapters import local
from apps.providers.runtime.adapters.base import Connection
from apps.providers.runtime.adapters.local import LocalAdapter
from apps.providers.runtime.adapters.rerankers import JinaAdapter, TEIAdapter, VoyageAdapter
from tests.fakes.rerankers import (
    JINA_KEY,
    VOYAGE_KEY,
    FakeJina,
    FakeTEI,
    FakeVoyage,
    fake_relevance,
    fake_vector,
    jina_error,
    tei_error,
    voyage_error,
)
from tests.providers.adapter_harness import AdapterHarness, closed_port_url, fake_fixtures

DOCUMENTS = [
    "Bananas are yellow.",
    "Paris is the capital of France.",
    "The capital of Norway is Oslo.",
    "France exports wine.",
]
QUERY = "what is the capital of France"
BEST_FIRST = [1, 2, 3, 0]
TEXTS = ["first text", "second text", "third text"]


jina_server, jina = fake_fixtures(FakeJina, name="jina")
voyage_server, voyage = fake_fixtures(FakeVoyage, name="voyage")
tei_server, tei = fake_fixtures(FakeTEI, name="tei")


@pytest.fixture
def servers(jina_server, voyage_server, tei_server):
    return {"jina": jina_server, "voyage": voyage_server, "tei": tei_server}


SERVICES = {
    "jina": AdapterHarness(JinaAdapter, "/v1", "jina", JINA_KEY),
    "voyage": AdapterHarness(VoyageAdapter, "/v1", "voyage", VOYAGE_KEY),
    "tei": AdapterHarness(TEIAdapter, "", "tei", None),
}


def run(protocol: str, fake, action, **connection):
    return SERVICES[protocol].run(fake, action, **connection)


# --- Jina ----------------------------------------------------------------------------------


def test_jina_embeds_documents_in_order_as_retrieval_passages(jina):
    result = run("jina", jina, lambda a: a.embed("jina-embeddings-v3", TEXTS))

    assert result.vectors == [fake_vector(t) for t in TEXTS]
    assert result.usage.input_tokens == 6
    sent = jina.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {JINA_KEY}"
    assert sent.json() == {
        "model": "jina-embeddings-v3",
        "input": TEXTS,
        "task": "retrieval.passage",
    }


def test_jina_embeds_queries_as_retrieval_queries(jina):
    run("jina", jina, lambda a: a.embed("jina-embeddings-v3", ["who?"], input_type="query"))

    assert jina.requests[-1].json()["task"] == "retrieval.query"


def test_jina_v2_models_get_no_task(jina):
    run("jina", jina, lambda a: a.embed("jina-embeddings-v2-base-en", ["who?"]))

    assert "task" not in jina.requests[-1].json()


def test_jina_rerank_puts_the_best_document_first_and_keeps_top_n(jina):
    result = run(
        "jina", jina, lambda a: a.rerank("jina-reranker-v2-base-multilingual", QUERY, DOCUMENTS)
    )
    top = run("jina", jina, lambda a: a.rerank("jina-reranker-m0", QUERY, DOCUMENTS, top_n=2))

    assert [item.index for item in result.items] == BEST_FIRST
    assert [item.text for item in result.items] == [DOCUMENTS[i] for i in BEST_FIRST]
    assert result.usage.input_tokens > 0
    assert [item.index for item in top.items] == [1, 2]
    body = jina.requests[-1].json()
    assert (body["top_n"], body["return_documents"]) == (2, False)


# --- Voyage --------------------------------------------------------------------------------


@pytest.mark.parametrize("input_type", ["document", "query"], ids=["document", "query"])
def test_voyage_embeds_in_order_with_the_input_type(voyage, input_type):
    result = run("voyage", voyage, lambda a: a.embed("voyage-3.5", TEXTS, input_type=input_type))

    assert result.vectors == [fake_vector(t) for t in TEXTS]
    assert result.usage.input_tokens == 6
    assert voyage.requests[-1].json() == {
        "input": TEXTS,
        "model": "voyage-3.5",
        "input_type": input_type,
    }


def test_voyage_sends_more_than_128_texts_in_batches_keeping_order(voyage):
    texts = [f"text {n}" for n in range(130)]

    result = run("voyage", voyage, lambda a: a.embed("voyage-3.5", texts))

    assert result.vectors == [fake_vector(t) for t in texts]
    assert [len(r.json()["input"]) for r in voyage.requests] == [128, 2]


def test_voyage_rerank_puts_the_best_document_first_and_sends_top_k(voyage):
    result = run("voyage", voyage, lambda a: a.rerank("rerank-2.5", QUERY, DOCUMENTS, top_n=3))

    assert [item.index for item in result.items] == BEST_FIRST[:3]
    assert result.items[0].text == "Paris is the capital of France."
    assert voyage.requests[-1].json()["top_k"] == 3


# --- TEI -----------------------------------------------------------------------------------


def test_tei_embeds_in_batches_of_32_without_auth_by_default(tei):
    texts = [f"text {n}" for n in range(40)]

    result = run("tei", tei, lambda a: a.embed("bge-small", texts))

    assert result.vectors == [fake_vector(t) for t in texts]
    assert [r.json() for r in tei.requests] == [
        {"inputs": texts[:32], "truncate": True},
        {"inputs": texts[32:], "truncate": True},
    ]
    assert "authorization" not in tei.requests[0].headers


def test_tei_rerank_merges_batches_and_puts_the_best_document_first(tei):
    documents = [f"filler document {n}" for n in range(35)] + DOCUMENTS

    result = run("tei", tei, lambda a: a.rerank("bge-reranker", QUERY, documents, top_n=2))

    assert [item.index for item in result.items] == [36, 37]
    assert result.items[0].text == "Paris is the capital of France."
    assert tei.requests[0].json()["raw_scores"] is False
    assert [len(r.json()["texts"]) for r in tei.requests] == [32, 7]


def test_tei_with_an_api_key_sends_it_as_bearer():
    with FakeTEI(api_key="tei-secret") as guarded:
        result = run("tei", guarded, lambda a: a.embed("m", ["a"]), api_key="tei-secret")
        with pytest.raises(errors.InvokeAuthorizationError):
            run("tei", guarded, lambda a: a.embed("m", ["a"]), api_key=None)

    assert result.vectors == [fake_vector("a")]
    assert guarded.requests[0].headers["authorization"] == "Bearer tei-secret"


@pytest.mark.parametrize(
    ("model_type", "expected"),
    [({"embedding": {"pooling": "cls"}}, "text-embedding"), ({"reranker": {}}, "rerank")],
    ids=["embedding", "reranker"],
)
def test_tei_lists_the_one_model_it_serves(tei, model_type, expected):
    tei.model_type = model_type

    models = run("tei", tei, lambda a: a.list_models())

    assert [(m.model, m.model_type, m.context_size) for m in models] == [
        ("BAAI/bge-small-en-v1.5", expected, 512)
    ]


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (413, "Validation", errors.InvokeBadRequestError),
        (422, "Tokenizer", errors.InvokeBadRequestError),
        (424, "Backend", errors.InvokeServerUnavailableError),
        (429, "Overloaded", errors.InvokeRateLimitError),
        (503, "Unhealthy", errors.InvokeServerUnavailableError),
    ],
    ids=["413", "422", "424", "429", "503"],
)
def test_tei_errors_map_to_ours_keeping_the_message(tei, status, error_type, expected):
    tei.queue(tei_error(status, f"tei says {error_type}", error_type))

    with pytest.raises(expected) as caught:
        run("tei", tei, lambda a: a.embed("m", ["a"]))

    assert caught.value.provider_message == f"tei says {error_type}"
    assert caught.value.upstream_status == status


def test_tei_batch_too_large_is_refused_by_the_server_with_its_message():
    with FakeTEI(max_client_batch_size=4) as small:
        with pytest.raises(errors.InvokeBadRequestError) as caught:
            run("tei", small, lambda a: a.embed("m", [f"t{n}" for n in range(10)]))

    assert caught.value.provider_message == "batch size 10 > maximum allowed batch size 4"


# --- Errors shared by the hosted services ----------------------------------------------------

HOSTED_ERRORS = pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, errors.InvokeBadRequestError),
        (401, errors.InvokeAuthorizationError),
        (403, errors.InvokeAuthorizationError),
        (422, errors.InvokeBadRequestError),
        (429, errors.InvokeRateLimitError),
        (500, errors.InvokeServerUnavailableError),
        (503, errors.InvokeServerUnavailableError),
    ],
    ids=["400", "401", "403", "422", "429", "500", "503"],
)


@HOSTED_ERRORS
@pytest.mark.parametrize("call", ["embed", "rerank"])
def test_jina_errors_map_to_ours_keeping_the_detail(jina, status, expected, call):
    jina.queue(jina_error(status, f"jina says {status}"))

    with pytest.raises(expected) as caught:
        run("jina", jina, lambda a: _call(a, call))

    assert caught.value.provider_message == f"jina says {status}"


@HOSTED_ERRORS
@pytest.mark.parametrize("call", ["embed", "rerank"])
def test_voyage_errors_map_to_ours_keeping_the_detail(voyage, status, expected, call):
    voyage.queue(voyage_error(status, f"voyage says {status}"))

    with pytest.raises(expected) as caught:
        run("voyage", voyage, lambda a: _call(a, call))

    assert caught.value.provider_message == f"voyage says {status}"


def _call(adapter, call: str):
    if call == "embed":
        return adapter.embed("model", ["a"])
    return adapter.rerank("model", "q", ["a", "b"])


@pytest.mark.parametrize("protocol", ["jina", "voyage"])
def test_a_wrong_key_is_an_authorization_error(servers, protocol):
    with pytest.raises(errors.InvokeAuthorizationError) as caught:
        run(protocol, servers[protocol], lambda a: a.embed("m", ["a"]), api_key="wrong")

    assert caught.value.provider_message


@pytest.mark.parametrize("protocol", ["jina", "voyage", "tei"])
def test_connection_refused_is_a_connection_error(servers, protocol):
    base_url = closed_port_url()

    with pytest.raises(errors.InvokeConnectionError):
        run(protocol, servers[protocol], lambda a: a.embed("m", ["a"]), base_url=base_url)


# --- Local (sentence-transformers) -----------------------------------------------------------


class _StandInEncoder:
    loads = 0

    def __init__(self, folder: str, device: str | None = None):
        type(self).loads += 1
        self.folder, self.device = folder, device
        self.prompts = {"query": "query: ", "document": "passage: "}
        self.calls: list = []

    def encode(self, texts, **options):
        self.calls.append(options)
        return [fake_vector(options.get("prompt_name", "") + t) for t in texts]


class _StandInCrossEncoder:
    def __init__(self, folder: str, device: str | None = None):
        self.folder, self.device = folder, device

    def predict(self, pairs):
        return [fake_relevance(query, document) for query, document in pairs]


@pytest.fixture
def stand_in_sentence_transformers(monkeypatch):
    """The library's two classes, without torch: checks our loading, caching and threading."""
    module = types.ModuleType("sentence_transformers")
    module.SentenceTransformer = _StandInEncoder
    module.CrossEncoder = _StandInCrossEncoder
    monkeypatch.setitem(sys.modules, "sentence_transformers", module)
    monkeypatch.setattr(local, "_models", {})
    _StandInEncoder.loads = 0
    return module


def run_local(action, model_path: str, device: str = "auto"):
    credentials = {"model_path": model_path, "device": device}
    connection = Connection(base_url="", api_key=None, credentials=credentials)
    return asyncio.run(action(LocalAdapter(connection)))


def test_local_embeddings_load_the_folder_once_and_keep_order(
    stand_in_sentence_transformers, tmp_path
):
    first = run_local(lambda a: a.embed("bge", TEXTS), str(tmp_path))
    second = run_local(lambda a: a.embed("bge", ["who?"], input_type="query"), str(tmp_path))

    assert first.vectors == [fake_vector("document" + t) for t in TEXTS]
    assert second.vectors == [fake_vector("query" + "who?")]
    assert _StandInEncoder.loads == 1


def test_local_models_load_on_the_chosen_device(stand_in_sentence_transformers, tmp_path):
    run_local(lambda a: a.embed("bge", ["a"]), str(tmp_path))
    run_local(lambda a: a.embed("bge", ["a"]), str(tmp_path), device="cpu")

    devices = [model.device for model in local._models.values()]
    assert devices == [None, "cpu"]  # "auto" leaves the choice to the library


def test_local_rerank_puts_the_best_document_first(stand_in_sentence_transformers, tmp_path):
    result = run_local(lambda a: a.rerank("bge-reranker", QUERY, DOCUMENTS, top_n=2), str(tmp_path))

    assert [item.index for item in result.items] == [1, 2]
    assert result.items[0].text == "Paris is the capital of France."


def test_local_refuses_a_path_that_is_not_a_folder(stand_in_sentence_transformers, tmp_path):
    with pytest.raises(errors.InvokeBadRequestError, match="No model folder"):
        run_local(lambda a: a.embed("bge", ["a"]), str(tmp_path / "missing"))


def test_local_without_sentence_transformers_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import now fails
    monkeypatch.setattr(local, "_models", {})

    with pytest.raises(errors.InvokeBadRequestError) as caught:
        run_local(lambda a: a.embed("bge", ["a"]), str(tmp_path))

    assert "pip install -e '.[local]'" in str(caught.value)


@pytest.mark.skipif(
    not os.environ.get("ORRERY_TEST_LOCAL_EMBEDDING_MODEL"),
    reason="set ORRERY_TEST_LOCAL_EMBEDDING_MODEL to a sentence-transformers model folder",
)
def test_local_embeddings_with_a_real_model():
    pytest.importorskip("sentence_transformers")
    folder = os.environ["ORRERY_TEST_LOCAL_EMBEDDING_MODEL"]

    result = run_local(lambda a: a.embed("local", ["a cat", "a dog"]), folder)

    assert len(result.vectors) == 2 and len(result.vectors[0]) > 8
