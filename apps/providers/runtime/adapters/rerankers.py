"""Embedding and rerank services: Jina AI and Voyage AI (base URLs end in /v1, Bearer
auth) and Hugging Face Text Embeddings Inference (a self-hosted server, no auth unless it
was started with --api-key).

Rerank results come back best first with each document's text filled in from the input,
whatever the service sends back (we ask it not to echo documents)."""

from __future__ import annotations

from typing import ClassVar

from apps.providers.runtime.adapters.base import Adapter, ranked
from apps.providers.runtime.types import EmbeddingResult, RemoteModel, RerankResult, Usage

_JINA_TASKS = {"document": "retrieval.passage", "query": "retrieval.query"}
# Jina's older models have no task adapters; the API documents `task` for v3 and later.
_JINA_WITHOUT_TASK = ("jina-embeddings-v2", "jina-clip-v1")
_VOYAGE_INPUT_TYPES = {"document", "query"}
_TEI_MODEL_TYPES = {"embedding": "text-embedding", "reranker": "rerank"}


class _HostedAdapter(Adapter):
    """Jina and Voyage: POST embeddings answers an OpenAI-shaped list, POST rerank a list of
    {index, relevance_score}; they differ in field names only."""

    max_embedding_batch = 128
    rerank_results: ClassVar[str]  # the key the scored documents come under

    def _embedding_payload(self, model: str, texts: list[str], input_type: str) -> dict:
        raise NotImplementedError

    def _rerank_payload(
        self, model: str, query: str, documents: list[str], top_n: int | None
    ) -> dict:
        raise NotImplementedError

    async def embed(
        self, model: str, texts: list[str], *, input_type: str = "document"
    ) -> EmbeddingResult:
        result = EmbeddingResult(vectors=[])
        for start in range(0, len(texts), self.max_embedding_batch):
            batch = texts[start : start + self.max_embedding_batch]
            response = await self.send(
                "POST",
                "embeddings",
                json=self._embedding_payload(model, batch, input_type),
                headers=self.bearer_headers(),
            )
            data = response.json()
            result.vectors += [item["embedding"] for item in sorted(data["data"], key=_index)]
            result.usage.input_tokens += _usage(data).input_tokens
        return result

    async def rerank(
        self, model: str, query: str, documents: list[str], *, top_n: int | None = None
    ) -> RerankResult:
        payload = self._rerank_payload(model, query, documents, top_n)
        response = await self.send("POST", "rerank", json=payload, headers=self.bearer_headers())
        data = response.json()
        scores = ((r["index"], r["relevance_score"]) for r in data[self.rerank_results])
        return RerankResult(items=ranked(scores, documents, top_n), usage=_usage(data))


def _index(item: dict) -> int:
    return item["index"]


def _usage(data: dict) -> Usage:
    return Usage(input_tokens=(data.get("usage") or {}).get("total_tokens") or 0)


# --- Jina AI ----------------------------------------------------------------------------


class JinaAdapter(_HostedAdapter):
    protocol = "jina"
    rerank_results = "results"

    def _embedding_payload(self, model: str, texts: list[str], input_type: str) -> dict:
        payload: dict = {"model": model, "input": texts}
        if not model.startswith(_JINA_WITHOUT_TASK):
            payload["task"] = _JINA_TASKS.get(input_type, "retrieval.passage")
        return payload

    def _rerank_payload(
        self, model: str, query: str, documents: list[str], top_n: int | None
    ) -> dict:
        payload: dict = {
            "model": model,
            "query": query,
            "documents": documents,
            "return_documents": False,
        }
        if top_n is not None:
            payload["top_n"] = top_n
        return payload


# --- Voyage AI --------------------------------------------------------------------------


class VoyageAdapter(_HostedAdapter):
    protocol = "voyage"
    rerank_results = "data"

    def _embedding_payload(self, model: str, texts: list[str], input_type: str) -> dict:
        payload: dict = {"input": texts, "model": model}
        if input_type in _VOYAGE_INPUT_TYPES:
            payload["input_type"] = input_type
        return payload

    def _rerank_payload(
        self, model: str, query: str, documents: list[str], top_n: int | None
    ) -> dict:
        payload: dict = {"query": query, "documents": documents, "model": model}
        if top_n is not None:
            payload["top_k"] = top_n
        return payload


# --- Hugging Face Text Embeddings Inference ---------------------------------------------


class TEIAdapter(Adapter):
    """One TEI server serves one model, so the model name is not sent. Inputs longer than
    the model takes are truncated rather than refused, as a hosted API would do."""

    protocol = "tei"
    max_embedding_batch = 32  # TEI's default --max-client-batch-size
    # 424 is TEI's "the model backend failed": the server's trouble, worth a retry.
    status_aliases = {424: 502}

    async def embed(
        self, model: str, texts: list[str], *, input_type: str = "document"
    ) -> EmbeddingResult:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.max_embedding_batch):
            batch = texts[start : start + self.max_embedding_batch]
            payload = {"inputs": batch, "truncate": True}
            response = await self.send("POST", "embed", json=payload, headers=self.bearer_headers())
            vectors += response.json()
        return EmbeddingResult(vectors=vectors)  # TEI reports no token counts

    async def rerank(
        self, model: str, query: str, documents: list[str], *, top_n: int | None = None
    ) -> RerankResult:
        # Each (query, document) pair is scored on its own, so batches can be merged.
        scores: list[tuple[int, float]] = []
        for start in range(0, len(documents), self.max_embedding_batch):
            payload = {
                "query": query,
                "texts": documents[start : start + self.max_embedding_batch],
                "raw_scores": False,
                "truncate": True,
            }
            response = await self.send(
                "POST", "rerank", json=payload, headers=self.bearer_headers()
            )
            scores += [(start + r["index"], r["score"]) for r in response.json()]
        return RerankResult(items=ranked(scores, documents, top_n))

    async def list_models(self) -> list[RemoteModel]:
        info = (await self.send("GET", "info", headers=self.bearer_headers())).json()
        kinds = [_TEI_MODEL_TYPES[k] for k in info.get("model_type") or {} if k in _TEI_MODEL_TYPES]
        return [
            RemoteModel(
                model=info["model_id"], model_type=kind, context_size=info.get("max_input_length")
            )
            for kind in kinds
        ]
