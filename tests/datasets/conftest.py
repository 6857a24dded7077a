"""Fixtures for knowledge bases: a workspace whose default embedding model is the fake
OpenAI on a real port, datasets, and real Dramatiq worker threads that index them."""

from __future__ import annotations

import time

import dramatiq
import pytest

from apps.datasets.models import Dataset, Document, IndexingTechnique
from apps.providers import services as provider_services
from apps.tenants.models import Role
from tests.fakes.openai import FakeOpenAI

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
