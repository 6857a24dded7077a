"""Service API keys of an app: `app-` + a random token, stored as SHA-256 only and shown
once. A recently used key is answered from the cache; revoking deletes the entry."""

from __future__ import annotations

from django.core.cache import cache
from django.utils import timezone

from apps.chat.models import App, AppApiKey
from apps.chat.services.apps import require
from apps.core.errors import DomainError, NotFound
from apps.tenants.keys import new_token, token_digest
from apps.tenants.models import Membership

APP_KEY_PREFIX = "app-"
MAX_KEYS_PER_APP = 10
TOUCH_SECONDS = 60  # last_used_at is refreshed at most this often; also the cache's life


def app_api_key_create(*, actor: Membership, app: App, name: str = "") -> tuple[AppApiKey, str]:
    require(actor, "apps.edit")
    if AppApiKey.objects.filter(app=app, revoked_at__isnull=True).count() >= MAX_KEYS_PER_APP:
        raise DomainError(
            f"An app can have at most {MAX_KEYS_PER_APP} keys: revoke one first.",
            code="max_keys_exceeded",
        )
    raw = new_token(APP_KEY_PREFIX)
    key = AppApiKey.objects.create(
        workspace=app.workspace,
        app=app,
        name=(name or "").strip()[:100],
        prefix=raw[: len(APP_KEY_PREFIX) + 6],
        key_hash=token_digest(raw),
        created_by=actor.user,
    )
    return key, raw


def app_api_key_revoke(*, actor: Membership, app: App, key_id) -> None:
    require(actor, "apps.edit")
    key = AppApiKey.objects.for_workspace(app.workspace).filter(app=app, pk=key_id).first()
    if key is None:
        raise NotFound("No such key for this app.")
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    cache.delete(_cache_name(key.key_hash))


def app_api_keys(*, app: App):
    return AppApiKey.objects.for_workspace(app.workspace).filter(app=app, revoked_at__isnull=True)


def app_api_key_authenticate(*, raw: str) -> App | None:
    """The app a live key opens, or None. The app must have its API enabled."""
    if not raw or not raw.startswith(APP_KEY_PREFIX):
        return None
    digest = token_digest(raw)
    app_id = cache.get(_cache_name(digest))
    if app_id is None:
        key = AppApiKey.objects.filter(key_hash=digest, revoked_at__isnull=True).first()
        if key is None:
            return None
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > TOUCH_SECONDS:
            AppApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        app_id = key.app_id
        cache.set(_cache_name(digest), app_id, timeout=TOUCH_SECONDS)
    return App.objects.select_related("workspace").filter(pk=app_id, enable_api=True).first()


def _cache_name(digest: str) -> str:
    return f"appkey:{digest}"
