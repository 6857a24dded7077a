"""A worker killed in the middle of a document: the database is the source of truth, so a
fresh worker's reconciler takes the document over once the dead run's lease is up, and the
document ends completed exactly once, with no duplicate chunks.

The worker is a real separate process (`manage.py indexing_worker`) on the same database,
killed with SIGKILL. Embedded, it has its own in-memory broker and finds work through the
reconciler alone; with REDIS_URL set it shares the Redis queue with this process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from apps.core.crypto import current_master_keys
from apps.datasets.models import Document, Segment
from apps.datasets.services import documents as doc_services
from apps.tenants.models import Role

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
LEASE = 2
# 40 paragraphs of ~300 characters: 40 chunks, embedded two at a time at 0.15 s a call.
TEXT = "\n\n".join(f"Section {n}. " + f"Moon {n} circles planet {n % 7}. " * 10 for n in range(40))


def _database_url() -> str:
    """This test run's database (the test database, not the configured one) as a URL; a
    socket folder as host goes in the query string."""
    db = connection.settings_dict
    user = quote(db["USER"] or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or ""
    if host.startswith("/"):
        return f"postgres://{user}{password}@/{db['NAME']}?host={quote(host, safe='/')}"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{user}{password}@{host}{port}/{db['NAME']}"


def _worker_env() -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "SECRET_KEY": settings.SECRET_KEY,
        "ORRERY_MASTER_KEYS": ",".join(current_master_keys()),
        "ORRERY_ALLOW_PRIVATE_NETWORKS": "true",  # the fake provider is on loopback
        "ORRERY_INDEXING_LEASE_SECONDS": str(LEASE),
        "ORRERY_INDEXING_RECONCILE_SECONDS": "1",
        "ORRERY_INDEXING_WAKE_AFTER_SECONDS": "0",
        "ORRERY_INDEXING_EMBED_BATCH": "2",
        "ORRERY_INDEXING_CONCURRENCY": "1",
        "ORRERY_HEARTBEAT_SECONDS": "60",
        "LOG_LEVEL": "WARNING",
    }
    return env


class WorkerProcess:
    def __init__(self, log: Path):
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "indexing_worker", "--threads", "1"],
            cwd=ROOT,
            env=_worker_env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as one
        )

    def signal(self, signum: int) -> None:
        os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.log.close()


def _wait(document: Document, check, what: str, timeout: float = 60) -> Document:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document.refresh_from_db()
        if check(document):
            return document
        time.sleep(0.05)
    raise AssertionError(f"{what}: still {document.indexing_status} {document.error}")


@pytest.fixture
def slow_embeddings(fake_openai):
    fake_openai.first_byte_delay = 0.15
    return fake_openai


@pytest.fixture
def spawn(tmp_path):
    started: list[WorkerProcess] = []

    def spawn() -> WorkerProcess:
        worker = WorkerProcess(tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield spawn
    for worker in started:
        worker.kill()


def _expected_chunks(actor) -> list[str]:
    return [
        c.content
        for c in doc_services.chunk_preview(actor=actor, process_rule=None, text=TEXT, limit=10_000)
    ]


def test_a_worker_killed_mid_document_leaves_it_completed_once(
    dataset, embedding_ready, slow_embeddings, spawn
):
    actor = embedding_ready.members[Role.EDITOR]
    document = doc_services.document_create_from_text(
        actor=actor, dataset=dataset, name="Moons", text=TEXT
    )
    first = spawn()
    _wait(
        document,
        lambda d: d.indexing_status == "indexing" and d.completed_segments >= 6,
        "the first worker never got going",
    )
    first.signal(signal.SIGKILL)
    first.process.wait(timeout=10)

    document.refresh_from_db()
    assert document.indexing_status == "indexing"  # stuck: its worker is gone
    assert 0 < document.completed_segments < document.total_segments
    assert not Segment.objects.filter(document=document).exists()

    spawn()
    document = _wait(document, lambda d: d.indexing_status == "completed", "not completed")

    expected = _expected_chunks(actor)
    segments = list(Segment.objects.filter(document=document).order_by("position"))
    assert [s.content for s in segments] == expected
    assert len({s.position for s in segments}) == len(segments) == document.total_segments
    assert all(s.embedding_dim for s in segments)
    assert document.attempts >= 2  # the killed run, then the one that finished
    assert document.completed_segments == document.total_segments == len(expected)


def test_a_run_presumed_dead_cannot_write_after_another_finished(
    dataset, embedding_ready, slow_embeddings, spawn
):
    """A frozen worker (SIGSTOP) outlives its lease; a second worker finishes the document.
    When the first wakes up it must not store its chunks or touch the status again."""
    actor = embedding_ready.members[Role.EDITOR]
    document = doc_services.document_create_from_text(
        actor=actor, dataset=dataset, name="Moons", text=TEXT
    )
    frozen = spawn()
    _wait(
        document,
        lambda d: d.indexing_status == "indexing" and d.completed_segments >= 4,
        "the first worker never got going",
    )
    frozen.signal(signal.SIGSTOP)
    spawn()
    document = _wait(document, lambda d: d.indexing_status == "completed", "not completed")
    finished_at = document.completed_at
    ids = set(Segment.objects.filter(document=document).values_list("pk", flat=True))

    frozen.signal(signal.SIGCONT)
    time.sleep(LEASE + 3)  # time enough for the thawed run to try its remaining steps

    document.refresh_from_db()
    assert document.indexing_status == "completed"
    assert document.completed_at == finished_at
    assert set(Segment.objects.filter(document=document).values_list("pk", flat=True)) == ids
    assert len(ids) == len(_expected_chunks(actor))
