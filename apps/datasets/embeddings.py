"""Which embedding model a knowledge base uses, and calls to it.

A high-quality dataset without its own model takes the workspace's default embedding
model the first time it needs one, and keeps it (pinned on the row): every chunk of a
dataset must come from one model, or its vectors cannot be compared."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

from django.conf import settings

from apps.core.errors import DomainError
from apps.datasets.models import Dataset, IndexingTechnique


class NoEmbeddingModel(DomainError):
    code = "no_embedding_model"


@dataclass(frozen=True)
class EmbeddingModel:
    provider: str
    model: str

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass
class Embedded:
    vectors: list[list[float]]
    seconds: float  # wall time inside the model calls


def embedding_model_for(dataset: Dataset, *, pin: bool = True) -> EmbeddingModel | None:
    """The dataset's model; None for economy datasets. Raises NoEmbeddingModel when a
    high-quality dataset has none and the workspace has no default either."""
    if dataset.indexing_technique == IndexingTechnique.ECONOMY:
        return None
    if dataset.embedding_model_provider and dataset.embedding_model:
        return EmbeddingModel(dataset.embedding_model_provider, dataset.embedding_model)
    from apps.providers.selectors import default_models  # the runtime's selector

    default = default_models(workspace=dataset.workspace_id).get("text-embedding")
    if default is None:
        raise NoEmbeddingModel(
            "This knowledge base needs an embedding model: choose one in its settings, set a "
            "default embedding model for the workspace, or switch it to economy indexing."
        )
    if pin:
        # Conditional: two first documents indexed at once agree on one model.
        Dataset.objects.filter(pk=dataset.pk, embedding_model="").update(
            embedding_model_provider=default.provider, embedding_model=default.model
        )
        dataset.refresh_from_db(fields=["embedding_model_provider", "embedding_model"])
        return EmbeddingModel(dataset.embedding_model_provider, dataset.embedding_model)
    return EmbeddingModel(default.provider, default.model)


def embed_texts(
    *, dataset: Dataset, model: EmbeddingModel, texts: list[str], input_type: str = "document"
) -> Embedded:
    """Vectors for texts, in order. The runtime batches each call to the provider's limit."""
    from apps.providers.instance import ModelInstance  # the runtime calls models

    instance = ModelInstance(
        workspace=dataset.workspace_id,
        provider=model.provider,
        model=model.model,
        model_type="text-embedding",
        source="dataset",
    )
    started = time.perf_counter()
    result = run_in_thread_loop(instance.invoke_text_embedding(texts, input_type=input_type))
    seconds = time.perf_counter() - started
    if len(result.vectors) != len(texts):
        raise DomainError(
            f"The embedding model {model.label} returned {len(result.vectors)} vectors for "
            f"{len(texts)} chunks.",
            code="embedding_mismatch",
        )
    return Embedded(vectors=result.vectors, seconds=seconds)


_local = threading.local()


def run_in_thread_loop(coroutine):
    """Run a coroutine on an event loop kept for this thread. The runtime pools its HTTP
    connections per loop, so a loop per call (async_to_sync) would pay a new client, TLS
    context and connection every time: about 80 ms an embedding call."""
    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = _local.loop = asyncio.new_event_loop()
    return loop.run_until_complete(coroutine)


def embed_batch_size() -> int:
    return max(1, settings.ORRERY_INDEXING_EMBED_BATCH)
