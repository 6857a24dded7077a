from ninja import Router, Status

from apps.core.health import health_report

router = Router(tags=["health"])


@router.get("/health", auth=None, response={200: dict, 503: dict})
def health(request):
    """Database, pgvector, Redis, storage and background-worker heartbeat; 503 if any fails."""
    report, healthy = health_report()
    return Status(200 if healthy else 503, report)
