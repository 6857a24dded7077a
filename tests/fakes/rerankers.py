"""Fake embedding and rerank services: Jina AI, Voyage AI and Hugging Face TEI.

Vectors and relevance scores are deterministic (`fake_vector`, `fake_relevance`), so tests
can say which vector belongs to which text and which document should rank first. The other
fakes that embed or rerank (Gemini, Cohere) use the same two functions."""

from __future__ import annotations

import hashlib
import re

from tests.fakes.server import FakeProvider, Reply, Request

JINA_KEY = "jina_fake_key"
VOYAGE_KEY = "pa-fake-key"
JINA_TASKS = {
    "retrieval.query",
    "retrieval.passage",
    "separation",
    "classification",
    "text-matching",
    "code.query",
    "code.passage",
}


def fake_vector(text: str, dims: int = 8) -> list[float]:
    """A vector that depends only on the text."""
    digest = hashlib.sha256(text.encode()).digest()
    return [round((byte - 127.5) / 127.5, 6) for byte in digest[:dims]]


def fake_relevance(query: str, document: str) -> float:
    """The share of the query's words that appear in the document."""
    asked = set(re.findall(r"\w+", query.lower()))
    found = set(re.findall(r"\w+", document.lower()))
    return round(len(asked & found) / len(asked), 4) if asked else 0.0


def _ranked(query: str, documents: list[str], top: int | None) -> list[tuple[int, float]]:
    scored = [(i, fake_relevance(query, doc)) for i, doc in enumerate(documents)]
    scored.sort(key=lambda pair: -pair[1])  # stable: ties keep their input order
    return scored[:top] if top else scored


def _tokens(texts: list[str]) -> int:
    return sum(len(text.split()) for text in texts)


def _bearer(request: Request) -> str:
    return request.headers.get("authorization", "").removeprefix("Bearer ")


class _ResettableFake(FakeProvider):
    def reset(self) -> None:
        """Forget queued replies and seen requests (one server, many tests)."""
        self.requests.clear()
        self._queued.clear()


# --- Jina AI ----------------------------------------------------------------------------


def jina_error(status: int, detail: str) -> Reply:
    return Reply.json({"detail": detail}, status=status)


class FakeJina(_ResettableFake):
    """POST /v1/embeddings (OpenAI-like, plus `task`) and POST /v1/rerank."""

    def __init__(self, api_key: str = JINA_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.route("POST", "/v1/embeddings", self._embeddings)
        self.route("POST", "/v1/rerank", self._rerank)

    def _refuse(self, request: Request) -> Reply | None:
        if _bearer(request) != self.api_key:
            return jina_error(401, "Unauthorized: invalid or missing API key")
        return None

    def _embeddings(self, request: Request) -> Reply:
        refused = self._refuse(request)
        if refused:
            return refused
        body = request.json() or {}
        texts = body.get("input")
        if not body.get("model") or not isinstance(texts, list) or not texts:
            return jina_error(422, "model and a non-empty input list are required")
        if "task" in body and body["task"] not in JINA_TASKS:
            return jina_error(422, f"Invalid task: {body['task']}")
        tokens = _tokens(texts)
        return Reply.json(
            {
                "model": body["model"],
                "object": "list",
                "usage": {"total_tokens": tokens, "prompt_tokens": tokens},
                "data": [
                    {"object": "embedding", "index": i, "embedding": fake_vector(text)}
                    for i, text in enumerate(texts)
                ],
            }
        )

    def _rerank(self, request: Request) -> Reply:
        refused = self._refuse(request)
        if refused:
            return refused
        body = request.json() or {}
        documents = [d if isinstance(d, str) else d.get("text", "") for d in body["documents"]]
        results = []
        for index, score in _ranked(body["query"], documents, body.get("top_n")):
            item: dict = {"index": index, "relevance_score": score}
            if body.get("return_documents", True):
                item["document"] = {"text": documents[index]}
            results.append(item)
        return Reply.json(
            {
                "model": body["model"],
                "usage": {"total_tokens": _tokens([body["query"], *documents])},
                "results": results,
            }
        )


# --- Voyage AI --------------------------------------------------------------------------


def voyage_error(status: int, detail: str) -> Reply:
    return Reply.json({"detail": detail}, status=status)


class FakeVoyage(_ResettableFake):
    """POST /v1/embeddings ({input, model, input_type}) and POST /v1/rerank."""

    def __init__(self, api_key: str = VOYAGE_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.route("POST", "/v1/embeddings", self._embeddings)
        self.route("POST", "/v1/rerank", self._rerank)

    def _refuse(self, request: Request) -> Reply | None:
        if _bearer(request) != self.api_key:
            return voyage_error(401, "Provided API key is invalid. Please provide a valid API key.")
        return None

    def _embeddings(self, request: Request) -> Reply:
        refused = self._refuse(request)
        if refused:
            return refused
        body = request.json() or {}
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if body.get("input_type") not in (None, "query", "document"):
            return voyage_error(
                400,
                f"Value '{body['input_type']}' supplied for argument 'input_type' is not "
                "valid. Accepted values are None, 'query' and 'document'.",
            )
        if not texts or len(texts) > 1000:
            return voyage_error(400, "The input list must contain between 1 and 1000 items.")
        return Reply.json(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "embedding": fake_vector(text), "index": i}
                    for i, text in enumerate(texts)
                ],
                "model": body["model"],
                "usage": {"total_tokens": _tokens(texts)},
            }
        )

    def _rerank(self, request: Request) -> Reply:
        refused = self._refuse(request)
        if refused:
            return refused
        body = request.json() or {}
        documents = body["documents"]
        data = []
        for index, score in _ranked(body["query"], documents, body.get("top_k")):
            item: dict = {"relevance_score": score, "index": index}
            if body.get("return_documents"):
                item["document"] = documents[index]
            data.append(item)
        return Reply.json(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"total_tokens": _tokens([body["query"], *documents])},
            }
        )


# --- Hugging Face Text Embeddings Inference ---------------------------------------------


def tei_error(status: int, error: str, error_type: str) -> Reply:
    return Reply.json({"error": error, "error_type": error_type}, status=status)


class FakeTEI(_ResettableFake):
    """POST /embed, POST /rerank and GET /info of one TEI server. No auth unless started
    with an api_key (TEI's --api-key), then a Bearer token is required."""

    def __init__(self, api_key: str | None = None, max_client_batch_size: int = 32) -> None:
        super().__init__()
        self.api_key = api_key
        self.max_client_batch_size = max_client_batch_size
        self.reset()
        self.route("POST", "/embed", self._embed)
        self.route("POST", "/rerank", self._rerank)
        self.route("GET", "/info", self._info)

    def reset(self) -> None:
        super().reset()
        self.model_id = "BAAI/bge-small-en-v1.5"
        self.model_type: dict = {"embedding": {"pooling": "cls"}}

    def _refuse(self, request: Request) -> Reply | None:
        if self.api_key and _bearer(request) != self.api_key:
            return tei_error(401, "Unauthorized", "Unauthorized")
        return None

    def _check_batch(self, texts: list) -> Reply | None:
        if not texts:
            return tei_error(422, "`inputs` cannot be empty", "Empty")
        if len(texts) > self.max_client_batch_size:
            return tei_error(
                413,
                f"batch size {len(texts)} > maximum allowed batch size "
                f"{self.max_client_batch_size}",
                "Validation",
            )
        return None

    def _embed(self, request: Request) -> Reply:
        refused = self._refuse(request)
        if refused:
            return refused
        inputs = (request.json() or {}).get("inputs")
        texts = [inputs] if isinstance(inputs, str) else inputs or []
        refused = self._check_batch(texts)
        if refused:
            return refused
        return Reply.json([fake_vector(text) for text in texts])

    def _rerank(self, request: Request) -> Reply:
        refused = self._refuse(request)
        if refused:
            return refused
        body = request.json() or {}
        texts = body.get("texts") or []
        refused = self._check_batch(texts)
        if refused:
            return refused
        results = []
        for index, score in _ranked(body["query"], texts, None):
            item: dict = {"index": index, "score": score}
            if body.get("return_text"):
                item["text"] = texts[index]
            results.append(item)
        return Reply.json(results)

    def _info(self, request: Request) -> Reply:
        return Reply.json(
            {
                "model_id": self.model_id,
                "model_sha": None,
                "model_dtype": "float32",
                "model_type": self.model_type,
                "max_concurrent_requests": 512,
                "max_input_length": 512,
                "max_batch_tokens": 16384,
                "max_client_batch_size": self.max_client_batch_size,
                "tokenization_workers": 4,
                "version": "1.7.0",
            }
        )
