"""Knowledge-base fixtures: a workspace whose embeddings come from the fake OpenAI on a
real port, datasets, real Dramatiq worker threads that index them (the pipeline tests), and
factories that store chunks the way indexing leaves them, with related vectors for related
texts (the retrieval tests)."""

from __future__ import annotations

import hashlib
import itertools
import time

import dramatiq
import pytest

from apps.datasets import indexing, vector_index
from apps.datasets.models import (
    Dataset,
    DataSourceType,
    DocForm,
    Document,
    IndexingStatus,
    IndexingTechnique,
    Segment,
)
from apps.providers import services as provider_services
from apps.tenants.models import Role
from tests.fakes.openai import FakeOpenAI
from tests.fakes.word_vectors import word_vector

FAKE_KEY = "sk-fake-key"
EMBEDDING_DIM = 16


@pytest.fixture
def fake_openai():
    with FakeOpenAI(api_key=FAKE_KEY, embedding_dimension=EMBEDDING_DIM) as fake:
        yield fake


@pytest.fixture
def embedding_ready(team, fake_openai):
    """`team` with OpenAI against the fake and text-embedding-3-small as default model."""
    owner = team.members[Role.OWNER]
    provider_services.provider_credentials_save(
        actor=owner,
        provider="openai",
        credentials={"openai_api_key": FAKE_KEY, "openai_api_base": fake_openai.url},
    )
    provider_services.default_model_set(
        actor=owner, model_type="text-embedding", provider="openai", model="text-embedding-3-small"
    )
    return team


def make_dataset(team, *, technique=IndexingTechnique.HIGH_QUALITY, **fields) -> Dataset:
    return Dataset.objects.create(
        workspace=team.workspace,
        name=fields.pop("name", "Handbook"),
        created_by=team.owner,
        indexing_technique=technique,
        **fields,
    )


@pytest.fixture
def dataset(embedding_ready):
    return make_dataset(embedding_ready)


@pytest.fixture
def economy_dataset(team):
    return make_dataset(team, technique=IndexingTechnique.ECONOMY, name="Notes")


class Workers:
    """Dramatiq worker threads on the configured broker (in-memory, or Redis in CI)."""

    def __init__(self, threads: int = 2):
        self.broker = dramatiq.get_broker()
        self.worker = dramatiq.Worker(self.broker, worker_threads=threads, worker_timeout=100)
        self.worker.start()

    def drain(self, timeout: float = 30) -> None:
        """Wait until every queued message (delayed ones too) has been handled."""
        deadline = time.monotonic() + timeout
        for queue in list(self.broker.get_declared_queues()):
            self.broker.join(queue, timeout=int(max(0.1, deadline - time.monotonic()) * 1000))
        self.worker.join()

    def stop(self) -> None:
        self.worker.stop(timeout=5_000)
        # Worker.start() adds a middleware that outlives it; one per test would pile up.
        self.broker.middleware[:] = [
            m for m in self.broker.middleware if getattr(m, "worker", None) is not self.worker
        ]
        self.broker.flush_all()


@pytest.fixture
def workers(settings):
    settings.ORRERY_INDEXING_RECONCILE_SECONDS = 0  # tests reconcile by hand
    dramatiq.get_broker().flush_all()  # wake-ups left by tests without workers
    running = Workers()
    yield running
    running.stop()


def wait_for(document: Document, statuses, timeout: float = 30) -> Document:
    deadline = time.monotonic() + timeout
    statuses = {statuses} if isinstance(statuses, str) else set(statuses)
    while time.monotonic() < deadline:
        document.refresh_from_db()
        if document.indexing_status in statuses:
            return document
        time.sleep(0.05)
    raise AssertionError(f"{document.name} stayed {document.indexing_status}: {document.error}")


# --- Retrieval: chunks stored directly, as indexing leaves them ---------------------

EMBEDDING_MODEL = "text-embedding-3-small"
SEARCH_DIMENSION = 256
_batch = itertools.count(1)


@pytest.fixture(scope="session", autouse=True)
def _vector_index(django_db_setup, django_db_blocker):
    """The HNSW index for the tests' width, made once outside any test's transaction (a
    test's transaction would roll it back, and Postgres refuses CREATE INDEX on a table
    with deferred foreign-key checks pending, as a test's inserts leave them)."""
    with django_db_blocker.unblock():
        vector_index.ensure_vector_index(SEARCH_DIMENSION)


@pytest.fixture
def embedder():
    with FakeOpenAI(
        api_key=FAKE_KEY, embeddings="words", embedding_dimension=SEARCH_DIMENSION
    ) as fake:
        yield fake


def connect_openai(team, fake) -> None:
    provider_services.provider_credentials_save(
        actor=team.members[Role.OWNER],
        provider="openai",
        credentials={"openai_api_key": FAKE_KEY, "openai_api_base": fake.url},
    )


@pytest.fixture
def ready(team, embedder):
    """`team`, with OpenAI embeddings served by the fake."""
    connect_openai(team, embedder)
    return team


def make_search_dataset(team, name: str = "Help centre", **fields) -> Dataset:
    defaults = {
        "indexing_technique": IndexingTechnique.HIGH_QUALITY,
        "embedding_model_provider": "openai",
        "embedding_model": EMBEDDING_MODEL,
    }
    if fields.get("indexing_technique") == IndexingTechnique.ECONOMY:
        defaults.update(embedding_model_provider="", embedding_model="")
    return Dataset.objects.create(
        workspace=team.workspace, name=name, created_by=team.owner, **{**defaults, **fields}
    )


def _segment(dataset, document, position, content, parent=None, **fields) -> Segment:
    embedded = dataset.indexing_technique == IndexingTechnique.HIGH_QUALITY
    segment = Segment.objects.create(
        workspace=dataset.workspace,
        dataset=dataset,
        document=document,
        parent=parent,
        position=position,
        content=content,
        word_count=len(content),
        tokens=len(content.split()),
        content_hash=hashlib.sha256(content.encode()).hexdigest(),
        embedding=word_vector(content, SEARCH_DIMENSION) if embedded else None,
        embedding_dim=SEARCH_DIMENSION if embedded else None,
        embedding_model=f"openai/{EMBEDDING_MODEL}" if embedded else "",
        **fields,
    )
    indexing.update_search_vectors(segment_ids=[segment.pk])
    return segment


def add_document(
    dataset: Dataset,
    chunks: list[str],
    *,
    name: str = "guide.md",
    status: str = IndexingStatus.COMPLETED,
    **fields,
) -> Document:
    """A document whose chunks are indexed (general chunks)."""
    document = Document.objects.create(
        workspace=dataset.workspace,
        dataset=dataset,
        name=name,
        data_source_type=DataSourceType.TEXT,
        batch=f"batch{next(_batch)}",
        indexing_status=status,
        **fields,
    )
    for position, content in enumerate(chunks, 1):
        _segment(dataset, document, position, content)
    return document


def add_parent_child_document(
    dataset: Dataset, parents: dict[str, list[str]], *, name: str = "manual.md"
) -> Document:
    """A parent-child document: {parent text: [child texts]}; the children are matched."""
    document = Document.objects.create(
        workspace=dataset.workspace,
        dataset=dataset,
        name=name,
        data_source_type=DataSourceType.UPLOAD_FILE,
        batch=f"batch{next(_batch)}",
        indexing_status=IndexingStatus.COMPLETED,
        doc_form=DocForm.HIERARCHICAL,
    )
    for position, (parent_text, children) in enumerate(parents.items(), 1):
        parent = Segment.objects.create(
            workspace=dataset.workspace,
            dataset=dataset,
            document=document,
            position=position,
            content=parent_text,
            content_hash=hashlib.sha256(parent_text.encode()).hexdigest(),
            searchable=False,
        )
        for child_position, child in enumerate(children, 1):
            _segment(dataset, document, child_position, child, parent=parent)
    return document


def segment_of(document: Document, text: str) -> Segment:
    return document.segments.get(content=text)
