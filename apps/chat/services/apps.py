"""Writes for apps: create, update, duplicate, delete, and the public link."""

from __future__ import annotations

import secrets

from django.db import transaction

from apps.chat.config import default_config
from apps.chat.fallbacks import fallbacks_changed, fallbacks_check
from apps.chat.models import App, AppMode
from apps.core.errors import DomainError, PermissionDenied
from apps.tenants.models import Membership
from apps.tenants.permissions import can

# Modes that can be built today; the others are shown as coming.
BUILDABLE_MODES = (AppMode.CHAT, AppMode.COMPLETION)
EDITABLE_FIELDS = (
    "name",
    "description",
    "icon",
    "icon_background",
    "config",
    "enable_site",
    "site_requires_login",
    "enable_api",
    "rate_limit_per_minute",
    "end_user_rate_limit_per_minute",
    "max_active_requests",
)


def require(actor: Membership, action: str) -> None:
    if not can(actor.role, action):
        raise PermissionDenied("Your role in this workspace does not allow that.")


def new_site_code() -> str:
    return secrets.token_urlsafe(12)


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise DomainError("Give the app a name.", code="invalid_param")
    if len(name) > 100:
        raise DomainError("The app's name can be at most 100 characters.", code="invalid_param")
    return name


def app_create(
    *,
    actor: Membership,
    name: str,
    mode: str,
    description: str = "",
    icon: str = "",
    config: dict | None = None,
) -> App:
    require(actor, "apps.edit")
    if mode not in BUILDABLE_MODES:
        raise DomainError(
            f"Apps of type {mode!r} cannot be built yet: choose chat or completion.",
            code="invalid_param",
        )
    app = App(
        workspace=actor.workspace,
        name=_clean_name(name),
        mode=mode,
        description=(description or "")[:2000],
        config=config if config is not None else default_config(mode),
        created_by=actor.user,
        site_code=new_site_code(),
    )
    if icon:
        app.icon = icon[:16]
    app.save()
    return app


def app_update(*, actor: Membership, app: App, **changes) -> App:
    """Change the given fields (see EDITABLE_FIELDS); anything else is refused."""
    require(actor, "apps.edit")
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise DomainError(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    if "name" in changes:
        changes["name"] = _clean_name(changes["name"])
    if "config" in changes and not isinstance(changes["config"], dict):
        raise DomainError("The configuration must be an object.", code="invalid_param")
    if "config" in changes and fallbacks_changed(app.config, changes["config"]):
        # An unchanged chain is let be: it may name a model imported before it was set up.
        fallbacks_check(workspace=app.workspace_id, config=changes["config"])
    for field, value in changes.items():
        setattr(app, field, value)
    app.save(update_fields=[*changes, "updated_at"])
    return app


def app_duplicate(*, actor: Membership, app: App, name: str = "") -> App:
    require(actor, "apps.edit")
    return app_create(
        actor=actor,
        name=name or f"{app.name} (copy)"[:100],
        mode=app.mode,
        description=app.description,
        icon=app.icon,
        config=app.config,
    )


def app_delete(*, actor: Membership, app: App) -> None:
    """Delete the app with its conversations, messages, keys and files."""
    require(actor, "apps.edit")
    with transaction.atomic():
        app.delete()


def app_site_regenerate(*, actor: Membership, app: App) -> App:
    """A new public link; the old one stops working at once."""
    require(actor, "apps.edit")
    app.site_code = new_site_code()
    app.save(update_fields=["site_code", "updated_at"])
    return app
