"""Documents are indexed in the background by real Dramatiq actors, against the fake
OpenAI embeddings on a real port."""

from __future__ import annotations

import pytest

from apps.datasets.models import Segment
from apps.datasets.services import documents as doc_services
from apps.tenants.models import Role

from .conftest import EMBEDDING_DIM, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

TEXT = "\n\n".join(f"Paragraph {n}. The orbit of body {n} is stable. " * 8 for n in range(1, 13))


def test_pasted_text_is_chunked_embedded_and_searchable(
    dataset, embedding_ready, workers, fake_openai
):
    actor = embedding_ready.members[Role.EDITOR]
    document = doc_services.document_create_from_text(
        actor=actor, dataset=dataset, name="Orbits", text=TEXT
    )
    assert document.indexing_status == "waiting"
    workers.drain()
    document = wait_for(document, "completed")

    segments = list(Segment.objects.filter(document=document).order_by("position"))
    assert len(segments) > 1
    assert document.total_segments == document.completed_segments == len(segments)
    assert all(s.embedding_dim == EMBEDDING_DIM for s in segments)
    assert all(s.embedding_model == "openai/text-embedding-3-small" for s in segments)
    assert all(len(s.content) <= 500 for s in segments)
    assert [s.position for s in segments] == list(range(len(segments)))
    assert document.parsing_completed_at and document.splitting_completed_at
    assert document.completed_at >= document.processing_started_at
    assert document.embedding_ms <= document.indexing_ms
    assert any(r.path == "/v1/embeddings" for r in fake_openai.requests)
    matched = Segment.objects.filter(document=document, search_vector="orbit")
    assert matched.count() == len(segments)
