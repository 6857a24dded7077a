"""Local models through sentence-transformers: embeddings and rerank from a folder on disk.

The library (and torch behind it) is an optional extra: `pip install -e '.[local]'`. The
folder comes from credentials["model_path"], the device from credentials["device"] ("auto"
lets the library choose). A path that is not a folder is refused before sentence-transformers
sees it, since it would read anything else as a Hub id and download. A model loads once per
folder and device and serves every later call; loading and inference run in a worker thread
so the event loop keeps serving."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from apps.providers.runtime import errors
from apps.providers.runtime.adapters.base import Adapter, Connection, ranked
from apps.providers.runtime.types import EmbeddingResult, RerankResult

INSTALL_HINT = "Local models need the `local` extra: pip install -e '.[local]'"

_models: dict[tuple[str, str, str | None], Any] = {}  # (kind, folder, device) -> model
_loading = threading.Lock()


class LocalAdapter(Adapter):
    protocol = "local"
    max_embedding_batch = 64

    def __init__(self, connection: Connection):
        # Nothing goes over HTTP, so unlike the other adapters this one needs no client.
        self.conn = connection
        self.http = connection.http

    async def embed(
        self, model: str, texts: list[str], *, input_type: str = "document"
    ) -> EmbeddingResult:
        encoder = await self._model("embedding")
        options: dict = {"normalize_embeddings": True, "convert_to_numpy": True}
        # Models trained with query/document prompts (e5, bge, nomic...) declare them.
        if input_type in (getattr(encoder, "prompts", None) or {}):
            options["prompt_name"] = input_type
        vectors = await _run(encoder.encode, texts, **options)
        return EmbeddingResult(vectors=[[float(x) for x in vector] for vector in vectors])

    async def rerank(
        self, model: str, query: str, documents: list[str], *, top_n: int | None = None
    ) -> RerankResult:
        if not documents:
            return RerankResult(items=[])
        scorer = await self._model("reranker")
        scores = await _run(scorer.predict, [(query, document) for document in documents])
        return RerankResult(items=ranked(enumerate(scores), documents, top_n))

    async def _model(self, kind: str) -> Any:
        folder = str(self.conn.credentials.get("model_path") or "").strip()
        if not folder:
            raise errors.InvokeBadRequestError("A local model needs a model_path")
        if not os.path.isdir(folder):
            raise errors.InvokeBadRequestError(f"No model folder at {folder}")
        device = str(self.conn.credentials.get("device") or "auto")
        key = (kind, folder, None if device == "auto" else device)
        return _models.get(key) or await asyncio.to_thread(_load, key)


async def _run(function, *args, **kwargs):
    try:
        return await asyncio.to_thread(function, *args, **kwargs)
    except Exception as exc:  # whatever torch raises (out of memory, bad input) is ours now
        raise errors.InvokeServerUnavailableError(
            "The local model failed", provider_message=str(exc)[:500]
        ) from exc


def _load(key: tuple[str, str, str | None]) -> Any:
    with _loading:  # two first calls at once must not load the same model twice
        if key not in _models:
            _models[key] = _construct(*key)
        return _models[key]


def _construct(kind: str, folder: str, device: str | None) -> Any:
    try:
        # Imported here: an optional extra, and importing it pulls in torch (seconds, GBs).
        import sentence_transformers
    except ImportError as exc:
        raise errors.InvokeBadRequestError(INSTALL_HINT) from exc
    model_class = (
        sentence_transformers.SentenceTransformer
        if kind == "embedding"
        else sentence_transformers.CrossEncoder
    )
    try:
        return model_class(folder, device=device)
    except Exception as exc:  # a folder without a usable model: missing files, bad config
        raise errors.InvokeBadRequestError(
            f"Could not load the model at {folder}", provider_message=str(exc)[:500]
        ) from exc
