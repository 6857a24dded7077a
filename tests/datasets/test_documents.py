"""Adding documents and driving their indexing, as a person using a knowledge base would:
upload, paste, fetch a page, watch the status, retry, pause, resume, re-index, delete."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from apps.core.errors import DomainError, NotFound, PermissionDenied
from apps.core.outbound import OutboundBlocked
from apps.datasets import indexing, tasks
from apps.datasets.embeddings import NoEmbeddingModel
from apps.datasets.extraction import UnsupportedFileType
from apps.datasets.models import Document, Segment
from apps.datasets.services import documents as doc_services
from apps.datasets.services.documents import TooManyFiles, UploadTooLarge
from apps.tenants.models import Role
from tests.fakes.openai import openai_error
from tests.fakes.server import FakeProvider, Reply

from . import files
from .conftest import Workers, make_dataset, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

LONG_TEXT = "\n\n".join(
    f"Chapter {n}. " + f"Comet {n} returns every {n} years. " * 12 for n in range(30)
)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def editor(embedding_ready):
    return embedding_ready.members[Role.EDITOR]


def upload(name: str, data: bytes, content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def every_format():
    return [
        upload("notes.txt", b"Halley's comet returns every 76 years."),
        upload("guide.md", b"# Guide\n\nComets have tails of gas and dust."),
        upload("kepler.html", files.HTML_PAGE, "text/html"),
        upload("report.pdf", files.pdf("Comet Encke has the shortest period."), "application/pdf"),
        upload("planets.docx", files.docx("Saturn has rings of ice.")),
        upload("moons.csv", b"planet,moons\nMars,2\nEarth,1\n", "text/csv"),
        upload("sizes.xlsx", files.xlsx([["Planet", "Radius"], ["Jupiter", 69911]])),
        upload("data.json", files.json_file({"comet": "Hale-Bopp", "year": 1997})),
    ]


# --- Upload ----------------------------------------------------------------------


def test_a_batch_of_every_format_is_stored_and_indexed(dataset, editor, workers):
    batch, documents = doc_services.document_create_from_files(
        actor=editor, dataset=dataset, files=every_format()
    )
    assert len(documents) == 8 and {d.batch for d in documents} == {batch}
    assert [d.position for d in documents] == list(range(8))
    assert all(default_storage.exists(d.file.name) for d in documents)
    workers.drain()
    for document in documents:
        document = wait_for(document, ("completed", "error"))
        assert document.indexing_status == "completed", (document.name, document.error)
        assert Segment.objects.filter(document=document).exists()
    contents = " ".join(Segment.objects.filter(dataset=dataset).values_list("content", flat=True))
    for fact in (
        "76 years",
        "tails of gas",
        "ellipses",
        "Encke",
        "rings of ice",
        "planet: Mars; moons: 2",
        "Jupiter",
        "Hale-Bopp",
    ):
        assert fact in contents, fact
    assert "About us" not in contents  # the HTML page's navigation


def test_a_damaged_file_in_a_batch_adds_nothing(dataset, editor):
    bad = upload("broken.docx", b"this is not a word document")
    with pytest.raises(DomainError, match="broken.docx could not be read"):
        doc_services.document_create_from_files(
            actor=editor, dataset=dataset, files=[upload("ok.txt", b"fine"), bad]
        )
    assert not Document.objects.filter(dataset=dataset).exists()


def test_an_unsupported_file_is_refused_with_the_supported_list(dataset, editor):
    with pytest.raises(UnsupportedFileType, match="slides.pptx: .pptx files are not supported"):
        doc_services.document_create_from_files(
            actor=editor, dataset=dataset, files=[upload("slides.pptx", b"PK\x03\x04")]
        )
    assert not Document.objects.filter(dataset=dataset).exists()


def test_a_pdf_that_breaks_while_indexing_says_why(dataset, editor, workers):
    _, [document] = doc_services.document_create_from_files(
        actor=editor, dataset=dataset, files=[upload("report.pdf", b"%PDF-1.4\n1 0 obj broken")]
    )
    workers.drain()
    document = wait_for(document, "error")
    assert document.error.startswith("report.pdf could not be read: the PDF is damaged")
    assert document.stopped_at is not None
    assert not Segment.objects.filter(document=document).exists()


def test_file_size_and_batch_limits(settings, dataset, editor):
    settings.ORRERY_DATASET_MAX_FILE_MB = 1
    settings.ORRERY_DATASET_MAX_BATCH_FILES = 3
    settings.ORRERY_DATASET_MAX_BATCH_MB = 2
    big = upload("big.txt", b"a" * (1024 * 1024 + 1))
    with pytest.raises(UploadTooLarge, match="big.txt is 1.0 MB; the limit is 1 MB"):
        doc_services.document_create_from_files(actor=editor, dataset=dataset, files=[big])
    many = [upload(f"n{i}.txt", b"x") for i in range(4)]
    with pytest.raises(TooManyFiles, match="the limit is 3"):
        doc_services.document_create_from_files(actor=editor, dataset=dataset, files=many)
    three = [upload(f"n{i}.txt", b"a" * 900_000) for i in range(3)]
    with pytest.raises(UploadTooLarge, match="one upload may hold 2 MB"):
        doc_services.document_create_from_files(actor=editor, dataset=dataset, files=three)
    with pytest.raises(UploadTooLarge):
        doc_services.document_create_from_text(
            actor=editor, dataset=dataset, name="Huge", text="a" * (1024 * 1024 + 1)
        )
    assert not Document.objects.filter(dataset=dataset).exists()


def test_roles_without_knowledge_manage_and_other_workspaces_are_refused(
    dataset, embedding_ready, other_team
):
    normal = embedding_ready.members[Role.NORMAL]
    with pytest.raises(PermissionDenied):
        doc_services.document_create_from_text(actor=normal, dataset=dataset, name="x", text="y")
    stranger = other_team.members[Role.OWNER]
    with pytest.raises(NotFound):
        doc_services.document_create_from_text(actor=stranger, dataset=dataset, name="x", text="y")
    operator = embedding_ready.members[Role.DATASET_OPERATOR]
    assert doc_services.document_create_from_text(
        actor=operator, dataset=dataset, name="x", text="y"
    )


def test_a_high_quality_dataset_needs_an_embedding_model(team):
    dataset = make_dataset(team)
    with pytest.raises(NoEmbeddingModel, match="needs an embedding model"):
        doc_services.document_create_from_text(
            actor=team.members[Role.OWNER], dataset=dataset, name="x", text="y"
        )


def test_the_first_document_pins_the_workspace_default_model_on_the_dataset(dataset, editor):
    doc_services.document_create_from_text(actor=editor, dataset=dataset, name="x", text="y")
    dataset.refresh_from_db()
    assert (dataset.embedding_model_provider, dataset.embedding_model) == (
        "openai",
        "text-embedding-3-small",
    )


def test_economy_datasets_index_full_text_without_a_model(team, workers, fake_openai):
    dataset = make_dataset(team, technique="economy")
    document = doc_services.document_create_from_text(
        actor=team.members[Role.OWNER], dataset=dataset, name="Notes", text=LONG_TEXT
    )
    workers.drain()
    document = wait_for(document, "completed")
    segments = Segment.objects.filter(document=document)
    assert segments.count() == document.total_segments > 1
    assert not segments.filter(embedding__isnull=False).exists()
    assert segments.filter(search_vector="comet").count() == segments.count()
    assert not fake_openai.requests


# --- Status, errors and controls -------------------------------------------------------


def test_progress_moves_through_the_statuses_a_page_shows(
    dataset, editor, workers, fake_openai, settings
):
    settings.ORRERY_INDEXING_EMBED_BATCH = 4
    fake_openai.first_byte_delay = 0.1
    document = doc_services.document_create_from_text(
        actor=editor, dataset=dataset, name="Comets", text=LONG_TEXT
    )
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        document.refresh_from_db()
        seen.append((document.indexing_status, document.completed_segments))
        if document.indexing_status == "completed":
            break
        time.sleep(0.02)
    progress = [done for status, done in seen if status == "indexing"]
    assert seen[-1][0] == "completed"
    assert len(set(progress)) >= 3 and progress == sorted(progress)  # it moved, forwards
    assert document.embedding_ms >= 0.1 * (document.total_segments // 4) * 1000


def test_a_provider_failure_says_why_and_retry_finishes_the_job(
    dataset, editor, workers, fake_openai
):
    fake_openai.queue(openai_error(500), openai_error(500))
    document = doc_services.document_create_from_text(
        actor=editor, dataset=dataset, name="Comets", text=LONG_TEXT
    )
    workers.drain()
    document = wait_for(document, "error")
    assert "server" in document.error.lower() or "unavailable" in document.error.lower()
    assert not Segment.objects.filter(document=document).exists()

    doc_services.document_retry(actor=editor, document=document)
    workers.drain()
    document = wait_for(document, "completed")
    assert document.error == ""
    assert Segment.objects.filter(document=document).count() == document.total_segments


def test_only_failed_documents_can_be_retried(dataset, editor):
    document = doc_services.document_create_from_text(
        actor=editor, dataset=dataset, name="x", text="y"
    )
    with pytest.raises(DomainError, match="cannot retry now: it is queued"):
        doc_services.document_retry(actor=editor, document=document)


def test_pause_before_a_worker_gets_there_then_resume(dataset, editor, settings):
    settings.ORRERY_INDEXING_RECONCILE_SECONDS = 0
    document = doc_services.document_create_from_text(
        actor=editor, dataset=dataset, name="Comets", text=LONG_TEXT
    )
    # The wake-up is queued but no worker runs yet. Pause wins; the message finds it paused.
    doc_services.document_pause(actor=editor, document=document)
    workers = Workers()
    try:
        workers.drain()
        document.refresh_from_db()
        assert document.indexing_status == "paused" and document.paused_at
        assert document.attempts == 0
        assert not Segment.objects.filter(document=document).exists()

        doc_services.document_resume(actor=editor, document=document)
        workers.drain()
        assert wait_for(document, "completed").paused_at is None
    finally:
        workers.stop()


def test_pausing_a_running_document_stops_it_without_writing(
    dataset, editor, workers, fake_openai, settings
):
    settings.ORRERY_INDEXING_EMBED_BATCH = 2
    fake_openai.first_byte_delay = 0.1
    document = doc_services.document_create_from_text(
        actor=editor, dataset=dataset, name="Comets", text=LONG_TEXT
    )
    deadline = time.monotonic() + 20
    while document.completed_segments < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
        document.refresh_from_db()
    doc_services.document_pause(actor=editor, document=document)
    workers.drain()
    time.sleep(0.3)
    document.refresh_from_db()
    assert document.indexing_status == "paused"
    assert not Segment.objects.filter(document=document).exists()


def test_reindex_with_a_new_rule_replaces_the_chunks(dataset, editor, workers):
    document = doc_services.document_create_from_text(
        actor=editor, dataset=dataset, name="Comets", text=LONG_TEXT
    )
    workers.drain()
    document = wait_for(document, "completed")
    before = Segment.objects.filter(document=document).count()
    rule = {
        "mode": "custom",
        "rules": {"segmentation": {"separator": "\\n\\n", "max_tokens": 200, "chunk_overlap": 0}},
    }
    doc_services.document_reindex(actor=editor, document=document, process_rule=rule)
    workers.drain()
    document = wait_for(document, "completed")
    segments = list(Segment.objects.filter(document=document))
    assert len(segments) != before
    assert all(len(s.content) <= 200 for s in segments)
    assert len({s.position for s in segments}) == len(segments) == document.total_segments


def test_dataset_reindex_queues_every_document(dataset, editor, workers):
    first = doc_services.document_create_from_text(
        actor=editor, dataset=dataset, name="a", text="Mars is red."
    )
    second = doc_services.document_create_from_text(
        actor=editor, dataset=dataset, name="b", text="Venus is hot."
    )
    workers.drain()
    wait_for(first, "completed"), wait_for(second, "completed")
    assert doc_services.dataset_reindex(actor=editor, dataset=dataset) == 2
    workers.drain()
    assert wait_for(first, "completed").attempts == 2
    assert wait_for(second, "completed").attempts == 2
    assert Segment.objects.filter(dataset=dataset).count() == 2


def test_duplicate_wake_ups_index_a_document_once(dataset, editor, workers, fake_openai):
    document = doc_services.document_create_from_text(
        actor=editor, dataset=dataset, name="Comets", text=LONG_TEXT
    )
    tasks.wake([document.pk] * 5)  # a redelivered or repeated message
    workers.drain()
    document = wait_for(document, "completed")
    assert document.attempts == 1
    assert Segment.objects.filter(document=document).count() == document.total_segments
    assert indexing.index_document(document.pk).status == "skipped"


def test_the_reconciler_requeues_a_document_whose_worker_went_silent(dataset, editor, settings):
    settings.ORRERY_INDEXING_LEASE_SECONDS = 60
    settings.ORRERY_INDEXING_MAX_ATTEMPTS = 3
    document = doc_services.document_create_from_text(
        actor=editor, dataset=dataset, name="a", text="Mars."
    )
    assert indexing.claim(document.pk) == 1  # a worker took it, then died
    assert indexing.reconcile() == []  # within its lease: left alone
    later = timezone.now() + timedelta(seconds=61)
    assert document.pk in indexing.reconcile(
        now=later + timedelta(seconds=settings.ORRERY_INDEXING_WAKE_AFTER_SECONDS)
    )
    document.refresh_from_db()
    assert document.indexing_status == "waiting" and document.claimed_at is None

    # A document that keeps killing its workers is failed, not retried for ever.
    indexing.claim(document.pk), indexing.reconcile(now=later)
    indexing.claim(document.pk)
    assert document.pk not in indexing.reconcile(now=later + timedelta(seconds=300))
    document.refresh_from_db()
    assert document.indexing_status == "error"
    assert "interrupted 3 times" in document.error


def test_disable_and_delete(dataset, editor, workers):
    document = doc_services.document_create_from_text(
        actor=editor, dataset=dataset, name="a", text="Mars."
    )
    workers.drain()
    document = wait_for(document, "completed")
    doc_services.document_set_enabled(actor=editor, document=document, enabled=False)
    document.refresh_from_db()
    assert document.enabled is False
    stored = document.file.name
    doc_services.document_delete(actor=editor, document=document)
    assert not Document.objects.filter(pk=document.pk).exists()
    assert not Segment.objects.filter(document_id=document.pk).exists()
    assert not default_storage.exists(stored)


def test_chunk_preview_shows_the_first_chunks_and_stores_nothing(dataset, editor):
    rule = {
        "mode": "custom",
        "rules": {"segmentation": {"separator": "\\n\\n", "max_tokens": 100, "chunk_overlap": 0}},
    }
    chunks = doc_services.chunk_preview(actor=editor, process_rule=rule, text=LONG_TEXT, limit=5)
    assert len(chunks) == 5 and all(len(c.content) <= 100 for c in chunks)
    assert chunks[0].content.startswith("Chapter 0.")
    pdf_chunks = doc_services.chunk_preview(
        actor=editor, process_rule=None, file=upload("r.pdf", files.pdf("Comet Encke"))
    )
    assert pdf_chunks[0].content == "Comet Encke"
    assert not Document.objects.exists()


# --- Web pages -------------------------------------------------------------------------


@pytest.fixture
def web_page():
    server = FakeProvider()
    server.route(
        "GET",
        "/kepler",
        lambda request: Reply(
            body=files.HTML_PAGE, headers={"Content-Type": "text/html; charset=utf-8"}
        ),
    )
    server.route(
        "GET",
        "/huge",
        lambda request: Reply(
            body=b"a" * (2 * 1024 * 1024), headers={"Content-Type": "text/plain"}
        ),
    )
    with server:
        yield server


def test_a_web_page_is_fetched_and_reduced_to_its_main_text(
    dataset, editor, workers, web_page, settings
):
    settings.ORRERY_ALLOW_PRIVATE_NETWORKS = True  # the page is on loopback in this test
    document = doc_services.document_create_from_url(
        actor=editor, dataset=dataset, url=f"{web_page.url}/kepler"
    )
    assert document.source_url.endswith("/kepler") and document.data_source_type == "url"
    workers.drain()
    document = wait_for(document, "completed")
    text = " ".join(Segment.objects.filter(document=document).values_list("content", flat=True))
    assert "equal areas in equal times" in text
    assert "About us" not in text and "tracking" not in text


def test_a_private_address_is_refused(dataset, editor, web_page, settings):
    settings.ORRERY_ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(OutboundBlocked, match="loopback address"):
        doc_services.document_create_from_url(
            actor=editor, dataset=dataset, url=f"{web_page.url}/kepler"
        )
    with pytest.raises(OutboundBlocked, match="metadata"):
        doc_services.document_create_from_url(
            actor=editor, dataset=dataset, url="http://169.254.169.254/latest/meta-data/"
        )
    assert not web_page.requests
    assert not Document.objects.exists()


def test_a_page_larger_than_the_limit_is_refused(dataset, editor, web_page, settings):
    settings.ORRERY_ALLOW_PRIVATE_NETWORKS = True
    settings.ORRERY_DATASET_MAX_FILE_MB = 1
    with pytest.raises(DomainError, match="larger than"):
        doc_services.document_create_from_url(
            actor=editor, dataset=dataset, url=f"{web_page.url}/huge"
        )
    assert not Document.objects.exists()
