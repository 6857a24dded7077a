"""Chunks edited by hand: added and edited chunks are embedded again and searchable at once;
keywords feed full-text search; disabled chunks stay stored; parents re-cut their children."""

from __future__ import annotations

import pytest

from apps.core.errors import DomainError, NotFound, PermissionDenied
from apps.datasets.models import Segment
from apps.datasets.services import documents as doc_services
from apps.datasets.services import segments as seg_services
from apps.tenants.models import Role
from tests.fakes.openai import fake_vector

from .conftest import EMBEDDING_DIM, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def editor(embedding_ready):
    return embedding_ready.members[Role.EDITOR]


@pytest.fixture
def indexed(dataset, editor, workers):
    document = doc_services.document_create_from_text(
        actor=editor, dataset=dataset, name="Planets", text="Mars is red.\n\nVenus is hot."
    )
    workers.drain()
    return wait_for(document, "completed")


def test_an_added_chunk_is_embedded_and_searchable(indexed, editor, fake_openai):
    segment = seg_services.segment_create(
        actor=editor, document=indexed, content="Jupiter has a great red spot.", keywords=["storm"]
    )
    assert segment.position == 1  # after the one chunk automatic mode made of the text
    assert segment.embedding_dim == EMBEDDING_DIM
    assert list(segment.embedding) == pytest.approx(
        fake_vector(segment.content, EMBEDDING_DIM), abs=1e-6
    )
    assert Segment.objects.filter(pk=segment.pk, search_vector="jupiter").exists()
    assert Segment.objects.filter(pk=segment.pk, search_vector="storm").exists()
    indexed.refresh_from_db()
    assert indexed.total_segments == 2


def test_editing_a_chunk_embeds_the_new_text(indexed, editor):
    segment = Segment.objects.get(document=indexed)
    updated = seg_services.segment_update(
        actor=editor, segment=segment, content="Saturn has rings."
    )
    assert updated.content == "Saturn has rings."
    assert list(updated.embedding) == pytest.approx(
        fake_vector("Saturn has rings.", EMBEDDING_DIM), abs=1e-6
    )
    assert Segment.objects.filter(pk=segment.pk, search_vector="saturn").exists()
    assert not Segment.objects.filter(pk=segment.pk, search_vector="mars").exists()


def test_keywords_are_searchable_and_limited(indexed, editor):
    segment = Segment.objects.get(document=indexed)
    seg_services.segment_set_keywords(
        actor=editor, segment=segment, keywords=["aphelion", "aphelion", " "]
    )
    segment.refresh_from_db()
    assert segment.keywords == ["aphelion"]
    assert Segment.objects.filter(pk=segment.pk, search_vector="aphelion").exists()
    with pytest.raises(DomainError, match="at most 10 keywords"):
        seg_services.segment_set_keywords(
            actor=editor, segment=segment, keywords=[f"k{i}" for i in range(11)]
        )


def test_disable_and_delete_a_chunk(indexed, editor):
    segment = Segment.objects.get(document=indexed)
    seg_services.segment_set_enabled(actor=editor, segment=segment, enabled=False)
    assert Segment.objects.get(pk=segment.pk).enabled is False
    seg_services.segment_delete(actor=editor, segment=segment)
    assert not Segment.objects.filter(pk=segment.pk).exists()
    indexed.refresh_from_db()
    assert indexed.total_segments == 0


def test_empty_chunks_roles_and_other_workspaces_are_refused(
    indexed, editor, embedding_ready, other_team
):
    segment = Segment.objects.get(document=indexed)
    with pytest.raises(DomainError, match="needs some text"):
        seg_services.segment_update(actor=editor, segment=segment, content="   ")
    with pytest.raises(PermissionDenied):
        seg_services.segment_delete(actor=embedding_ready.members[Role.NORMAL], segment=segment)
    with pytest.raises(NotFound):
        seg_services.segment_delete(actor=other_team.members[Role.OWNER], segment=segment)
    assert Segment.objects.filter(pk=segment.pk).exists()


def test_editing_a_parent_recuts_and_embeds_its_children(dataset, editor, workers):
    document = doc_services.document_create_from_text(
        actor=editor,
        dataset=dataset,
        name="Planets",
        text="Mars is red.\nIt has two moons.\n\nVenus is hot.",
        process_rule={"mode": "hierarchical", "rules": {"parent_mode": "paragraph"}},
    )
    workers.drain()
    document = wait_for(document, "completed")
    assert document.doc_form == "hierarchical_model"
    parent = Segment.objects.get(document=document, parent=None, position=0)
    assert parent.searchable is False and parent.embedding is None
    assert [c.content for c in parent.children.order_by("position")] == [
        "Mars is red.",
        "It has two moons.",
    ]

    seg_services.segment_update(
        actor=editor, segment=parent, content="Mars is cold.\nIts days are long.\nDust storms."
    )
    children = list(parent.children.order_by("position"))
    assert [c.content for c in children] == ["Mars is cold.", "Its days are long.", "Dust storms."]
    assert all(c.embedding_dim == EMBEDDING_DIM for c in children)
    document.refresh_from_db()
    assert document.total_segments == 4  # three children of Mars, one of Venus
