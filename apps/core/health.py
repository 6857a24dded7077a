"""What /api/health reports: each dependency checked for real, with its own verdict."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone

from apps.core.models import WorkerHeartbeat


def _database() -> tuple[dict, bool]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cursor.fetchone()
    except Exception as exc:
        return {"database": f"error: {exc.__class__.__name__}", "pgvector": None}, False
    version = row[0] if row else None
    return {"database": "ok", "pgvector": version}, version is not None


def _redis() -> tuple[str, bool]:
    if not settings.REDIS_URL:
        return "not configured", True
    import redis  # only needed when Redis is configured

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()
    except Exception as exc:
        return f"error: {exc.__class__.__name__}", False
    return "ok", True


def _storage() -> tuple[str, bool]:
    name = f"healthcheck/{uuid.uuid4().hex}.txt"
    try:
        saved = default_storage.save(name, ContentFile(b"ok"))
        with default_storage.open(saved) as handle:
            ok = handle.read() == b"ok"
        default_storage.delete(saved)
    except Exception as exc:
        return f"error: {exc.__class__.__name__}", False
    return ("ok", True) if ok else ("error: read back differs", False)


def _worker() -> tuple[float | None, bool]:
    latest = WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()
    if latest is None:
        return None, False
    age = (timezone.now() - latest).total_seconds()
    # A worker is stale after missing a few beats (and never sooner than a minute).
    stale_after = max(60, 3 * settings.ORRERY_HEARTBEAT_SECONDS)
    return round(age, 1), age <= stale_after


def health_report() -> tuple[dict, bool]:
    db, db_ok = _database()
    report = dict(db)
    healthy = db_ok
    if db_ok:
        report["worker_heartbeat_age_s"], worker_ok = _worker()
        healthy &= worker_ok
    report["redis"], redis_ok = _redis()
    report["storage"], storage_ok = _storage()
    healthy &= redis_ok and storage_ok
    report["status"] = "ok" if healthy else "unhealthy"
    return report, healthy
