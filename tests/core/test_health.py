import time

import pytest
from django.test import Client

from apps.core.models import WorkerHeartbeat
from apps.core.worker import start_embedded_worker


def _health() -> tuple[int, dict]:
    response = Client().get("/api/health")
    return response.status_code, response.json()


@pytest.mark.django_db
def test_health_is_unhealthy_without_a_worker_heartbeat():
    WorkerHeartbeat.objects.all().delete()
    status, report = _health()
    assert status == 503
    assert report["database"] == "ok"
    assert report["worker_heartbeat_age_s"] is None
    assert report["status"] == "unhealthy"


@pytest.mark.django_db(transaction=True)
def test_health_is_ok_once_a_real_worker_beats(settings):
    settings.ORRERY_HEARTBEAT_SECONDS = 1
    worker = start_embedded_worker(threads=1)
    try:
        deadline = time.monotonic() + 10
        while not WorkerHeartbeat.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        status, report = _health()
    finally:
        worker.stop(timeout=5000)
    assert status == 200, report
    assert report["status"] == "ok"
    assert report["database"] == "ok"
    major, minor, *_ = (int(part) for part in report["pgvector"].split("."))
    assert (major, minor) >= (0, 7)
    assert report["storage"] == "ok"
    assert report["redis"] in ("ok", "not configured")
    assert 0 <= report["worker_heartbeat_age_s"] < 5


@pytest.mark.django_db
def test_health_reports_a_stale_worker(settings):
    from datetime import timedelta

    from django.utils import timezone

    WorkerHeartbeat.objects.all().delete()
    WorkerHeartbeat.objects.create(worker="gone:1", seen_at=timezone.now() - timedelta(minutes=5))
    status, report = _health()
    assert status == 503
    assert report["worker_heartbeat_age_s"] >= 300


@pytest.mark.django_db
def test_health_reports_a_broken_redis(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    status, report = _health()
    assert status == 503
    assert report["redis"].startswith("error")
