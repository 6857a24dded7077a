"""Embedding and rerank services: Jina AI and Voyage AI (base URLs end in /v1, Bearer
auth) and Hugging Face Text Embeddings Inference (a self-hosted server, no auth unless it
was started with --api-key).

Rerank results come back best first with each document's text filled in from the input,
whatever the service sends back (we ask it not to echo documents)."""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from apps.providers.runtime.adapters.base import Adapter, map_status
from apps.providers.runtime.types import (
    EmbeddingResult,
    RemoteModel,
    RerankItem,
    RerankResult,
    Usage,
)

_JINA_TASKS = {"document": "retrieval.passage", "query": "retrieval.query"}
# Jina's older models have no task adapters; the API documents `task` for v3 and later.
_JINA_WITHOUT_TASK = ("jina-embeddings-v2", "jina-clip-v1")
_VOYAGE_INPUT_TYPES = {"document", "query"}
_TEI_MODEL_TYPES = {"embedding": "text-embedding", "reranker": "rerank"}


def ranked(
    scores: Iterable[tuple[int, float]], documents: list[str], top_n: int | None
) -> list[RerankItem]:
    """(index, score) pairs as RerankItems, best first, cut to top_n."""
    items = [RerankItem(index=i, score=float(score), text=documents[i]) for i, score in scores]
    items.sort(key=lambda item: -item.score)
    return items[:top_n] if top_n is not None else items


class _BearerAdapter(Adapter):
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.conn.api_key}"} if self.conn.api_key else {}


class _HostedAdapter(_BearerAdapter):
    """Jina and Voyage: POST embeddings answers an OpenAI-shaped list."""

    max_embedding_batch = 128

    def _embedding_payload(self, model: str, texts: list[str], input_type: str) -> dict:
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
                headers=self._headers(),
            )
            data = response.json()
            result.vectors += [item["embedding"] for item in sorted(data["data"], key=_index)]
            result.usage.input_tokens += (data.get("usage") or {}).get("total_tokens") or 0
        return result


def _index(item: dict) -> int:
    return item["index"]


def _usage(data: dict) -> Usage:
    return Usage(input_tokens=(data.get("usage") or {}).get("total_tokens") or 0)


# --- Jina AI ----------------------------------------------------------------------------


class JinaAdapter(_HostedAdapter):
    protocol = "jina"

    def _embedding_payload(self, model: str, texts: list[str], input_type: str) -> dict:
        payload: dict = {"model": model, "input": texts}
        if not model.startswith(_JINA_WITHOUT_TASK):
            payload["task"] = _JINA_TASKS.get(input_type, "retrieval.passage")
        return payload

    async def rerank(
        self, model: str, query: str, documents: list[str], *, top_n: int | None = None
    ) -> RerankResult:
        payload: dict = {
            "model": model,
            "query": query,
            "documents": documents,
            "return_documents": False,
        }
        if top_n is not None:
            payload["top_n"] = top_n
        response = await self.send("POST", "rerank", json=payload, headers=self._headers())
        data = response.json()
        scores = ((r["index"], r["relevance_score"]) for r in data["results"])
        return RerankResult(items=ranked(scores, documents, top_n), usage=_usage(data))


# --- Voyage AI --------------------------------------------------------------------------


class VoyageAdapter(_HostedAdapter):
    protocol = "voyage"

    def _embedding_payload(self, model: str, texts: list[str], input_type: str) -> dict:
        payload: dict = {"input": texts, "model": model}
        if input_type in _VOYAGE_INPUT_TYPES:
            payload["input_type"] = input_type
        return payload

    async def rerank(
        self, model: str, query: str, documents: list[str], *, top_n: int | None = None
    ) -> RerankResult:
        payload: dict = {"query": query, "documents": documents, "model": model}
        if top_n is not None:
            payload["top_k"] = top_n
        response = await self.send("POST", "rerank", json=payload, headers=self._headers())
        data = response.json()
        scores = ((r["index"], r["relevance_score"]) for r in data["data"])
        return RerankResult(items=ranked(scores, documents, top_n), usage=_usage(data))


# --- Hugging Face Text Embeddings Inference ---------------------------------------------


class TEIAdapter(_BearerAdapter):
    """One TEI server serves one model, so the model name is not sent. Inputs longer than
    the model takes are truncated rather than refused, as a hosted API would do."""

    protocol = "tei"
    max_embedding_batch = 32  # TEI's default --max-client-batch-size

    async def check(self, response: httpx.Response) -> httpx.Response:
        if response.is_success:
            return response
        body = await response.aread()
        status = response.status_code
        # 424 is TEI's "the model backend failed": the server's trouble, worth a retry.
        mapped = map_status(
            502 if status == 424 else status, self.error_message(body), response.headers
        )
        mapped.upstream_status = status
        raise mapped

    async def embed(
        self, model: str, texts: list[str], *, input_type: str = "document"
    ) -> EmbeddingResult:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.max_embedding_batch):
            batch = texts[start : start + self.max_embedding_batch]
            payload = {"inputs": batch, "truncate": True}
            response = await self.send("POST", "embed", json=payload, headers=self._headers())
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
            response = await self.send("POST", "rerank", json=payload, headers=self._headers())
            scores += [(start + r["index"], r["score"]) for r in response.json()]
        return RerankResult(items=ranked(scores, documents, top_n))

    async def list_models(self) -> list[RemoteModel]:
        info = (await self.send("GET", "info", headers=self._headers())).json()
        kinds = [_TEI_MODEL_TYPES[k] for k in info.get("model_type") or {} if k in _TEI_MODEL_TYPES]
        return [
            RemoteModel(
                model=info["model_id"], model_type=kind, context_size=info.get("max_input_length")
            )
            for kind in kinds
        ]
