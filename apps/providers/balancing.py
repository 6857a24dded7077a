"""Load balancing across credential sets: the order in which a call tries them, and
cooldowns shared by every process through the cache (Redis when configured)."""

from __future__ import annotations

from contextlib import contextmanager

from django.core.cache import cache

from apps.providers.models import LoadBalancing
from apps.providers.resolution import CredentialChoice, ModelTarget
from apps.providers.runtime import errors

RATE_LIMIT_COOLDOWN = 60  # seconds
FAILURE_COOLDOWN = 10  # auth or connection failures


def _cool_key(target: ModelTarget, choice: CredentialChoice) -> str:
    return f"lb:cool:{target.workspace_id}:{choice.key}"


def _busy_key(target: ModelTarget, choice: CredentialChoice) -> str:
    return f"lb:busy:{target.workspace_id}:{choice.key}"


def attempt_order(target: ModelTarget) -> list[CredentialChoice]:
    """Credential sets to try, best first. Sets cooling down go last, not away: a call
    still goes through when every set is cooling."""
    choices = list(target.choices)
    if len(choices) < 2:
        return choices
    if target.strategy == LoadBalancing.LEAST_BUSY:
        busy = cache.get_many([_busy_key(target, c) for c in choices])
        choices.sort(key=lambda c: busy.get(_busy_key(target, c), 0))
    else:
        turn_key = f"lb:turn:{target.workspace_id}:{target.provider.provider}:{target.model}"
        cache.add(turn_key, 0, timeout=None)
        start = cache.incr(turn_key) % len(choices)
        choices = choices[start:] + choices[:start]
    cooling = cache.get_many([_cool_key(target, c) for c in choices])
    return sorted(choices, key=lambda c: _cool_key(target, c) in cooling)


def cool_down(target: ModelTarget, choice: CredentialChoice, error: errors.InvokeError) -> None:
    if len(target.choices) < 2:
        return
    if isinstance(error, errors.InvokeRateLimitError):
        seconds = max(RATE_LIMIT_COOLDOWN, int(error.retry_after or 0))
    elif isinstance(error, errors.InvokeAuthorizationError | errors.InvokeConnectionError):
        seconds = FAILURE_COOLDOWN
    else:
        return
    cache.set(_cool_key(target, choice), 1, timeout=seconds)


def is_cooling(target: ModelTarget, choice: CredentialChoice) -> bool:
    return cache.get(_cool_key(target, choice)) is not None


@contextmanager
def in_flight(target: ModelTarget, choice: CredentialChoice):
    """Counts calls under way per credential set, for the least-busy strategy."""
    if target.strategy != LoadBalancing.LEAST_BUSY:
        yield
        return
    key = _busy_key(target, choice)
    cache.add(key, 0, timeout=3600)
    cache.incr(key)
    try:
        yield
    finally:
        try:
            cache.decr(key)
        except ValueError:  # expired meanwhile
            pass
