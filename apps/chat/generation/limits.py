"""Admission before a turn starts: per-app and per-end-user requests per minute, the
app's concurrent runs, and the workspace's monthly message quota."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from apps.chat.models import App, Message
from apps.core import ratelimit
from apps.core.errors import RateLimited

WINDOW = 60
ACTIVE_TTL = 600  # seconds: a run lost without a decrement stops counting after this


def has_limits(app: App) -> bool:
    return bool(
        app.rate_limit_per_minute
        or app.end_user_rate_limit_per_minute
        or app.max_active_requests
        or getattr(settings, "ORRERY_WORKSPACE_MONTHLY_MESSAGES", 0)
    )


def admit(*, app: App, requester: str) -> None:
    """Raise RateLimited (429 with Retry-After) when this request must wait."""
    if app.rate_limit_per_minute:
        wait = ratelimit.hit(
            "chat-app", str(app.pk), limit=app.rate_limit_per_minute, window=WINDOW
        )
        if wait:
            raise RateLimited(
                f"This app takes at most {app.rate_limit_per_minute} requests a minute.",
                retry_after=wait,
            )
    if app.end_user_rate_limit_per_minute and requester:
        limit = app.end_user_rate_limit_per_minute
        wait = ratelimit.hit("chat-user", f"{app.pk}:{requester}", limit=limit, window=WINDOW)
        if wait:
            raise RateLimited(f"You can send at most {limit} messages a minute.", retry_after=wait)
    quota = getattr(settings, "ORRERY_WORKSPACE_MONTHLY_MESSAGES", 0)
    if quota:
        start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        used = Message.objects.for_workspace(app.workspace_id).filter(created_at__gte=start).count()
        if used >= quota:
            nxt = (start + timedelta(days=32)).replace(day=1)
            error = RateLimited(
                f"This workspace has used its {quota} messages for this month.",
                retry_after=int((nxt - timezone.now()).total_seconds()),
            )
            error.code = "quota_exceeded"
            raise error


def _active_key(app_id) -> str:
    return f"chatgen:active:{app_id}"


def active_acquire(app: App) -> bool:
    """Count one more running turn; False (and nothing counted) when the app is full."""
    if not app.max_active_requests:
        return True
    key = _active_key(app.pk)
    cache.add(key, 0, timeout=ACTIVE_TTL)
    try:
        count = cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=ACTIVE_TTL)
        count = 1
    if count > app.max_active_requests:
        active_release(app)
        return False
    return True


def active_release(app: App) -> None:
    if not app.max_active_requests:
        return
    try:
        if cache.decr(_active_key(app.pk)) < 0:
            cache.set(_active_key(app.pk), 0, timeout=ACTIVE_TTL)
    except ValueError:
        pass


def too_many_active(app: App) -> RateLimited:
    error = RateLimited(
        f"Too many requests running for this app at once (at most {app.max_active_requests}).",
        retry_after=1,
    )
    return error
