"""Knowledge-base fixtures: a workspace whose OpenAI embeddings come from a fake on a real
port that serves related vectors for related texts, and factories that store documents and
chunks the way indexing leaves them (embeddings from the same fake model, full text)."""

from __future__ import annotations

import hashlib
import itertools

import pytest

from apps.datasets import vector_index
from apps.datasets.models import (
    Dataset,
    DataSourceType,
    DocForm,
    Document,
    IndexingStatus,
    IndexingTechnique,
    Segment,
)
from apps.datasets.text_search import search_vector_value
from apps.providers import services
from apps.tenants.models import Role
from tests.fakes.openai import FakeOpenAI
from tests.fakes.word_vectors import word_vector

FAKE_KEY = "sk-fake-key"
EMBEDDING_MODEL = "text-embedding-3-small"
DIMENSION = 256
_batch = itertools.count(1)


@pytest.fixture(scope="session", autouse=True)
def _vector_index(django_db_setup, django_db_blocker):
    """The HNSW index for the tests' width, made once outside any test's transaction (a
    test's transaction would roll it back, and Postgres refuses CREATE INDEX on a table
    with deferred foreign-key checks pending, as a test's inserts leave them)."""
    with django_db_blocker.unblock():
        vector_index.ensure_vector_index(DIMENSION)


@pytest.fixture
def embedder():
    with FakeOpenAI(api_key=FAKE_KEY, embeddings="words", embedding_dimension=DIMENSION) as fake:
        yield fake


def connect_openai(team, fake) -> None:
    services.provider_credentials_save(
        actor=team.members[Role.OWNER],
        provider="openai",
        credentials={"openai_api_key": FAKE_KEY, "openai_api_base": fake.url},
    )


@pytest.fixture
def ready(team, embedder):
    """`team`, with OpenAI embeddings served by the fake."""
    connect_openai(team, embedder)
    return team


def make_dataset(team, name: str = "Help centre", **fields) -> Dataset:
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
        embedding=word_vector(content, DIMENSION) if embedded else None,
        embedding_dim=DIMENSION if embedded else None,
        embedding_model=f"openai/{EMBEDDING_MODEL}" if embedded else "",
        **fields,
    )
    Segment.objects.filter(pk=segment.pk).update(
        search_vector=search_vector_value(content, fields.get("keywords") or ())
    )
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
