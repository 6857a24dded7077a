"""Fixed-window counters in the cache (Redis when configured, so shared across processes)."""

from __future__ import annotations

import hashlib
import time

from django.core.cache import cache


def _key(scope: str, subject: str, window: int) -> tuple[str, int]:
    now = int(time.time())
    bucket = now // window
    digest = hashlib.sha256(subject.lower().encode()).hexdigest()[:32]
    retry_after = window - (now % window)
    return f"rl:{scope}:{digest}:{bucket}", retry_after


def hit(scope: str, subject: str, *, limit: int, window: int) -> int | None:
    """Count one event; return seconds to wait if the limit is now exceeded, else None."""
    key, retry_after = _key(scope, subject, window)
    cache.add(key, 0, timeout=window + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window + 1)
        count = 1
    return retry_after if count > limit else None


def blocked(scope: str, subject: str, *, limit: int, window: int) -> int | None:
    """Seconds to wait if the subject is already over its limit, without counting."""
    key, retry_after = _key(scope, subject, window)
    count = cache.get(key, 0)
    return retry_after if count >= limit else None


def reset(scope: str, subject: str, *, window: int) -> None:
    key, _ = _key(scope, subject, window)
    cache.delete(key)
