"""Reads for apps, always inside one workspace: a foreign id is simply "not found"."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from apps.chat.models import App, Message
from apps.core.errors import NotFound


def app_list(*, workspace, search: str = "", mode: str = "") -> QuerySet[App]:
    apps = App.objects.for_workspace(workspace)
    if search:
        apps = apps.filter(Q(name__icontains=search) | Q(description__icontains=search))
    if mode:
        apps = apps.filter(mode=mode)
    return apps.order_by("-updated_at")


def app_get(*, workspace, app_id) -> App:
    try:
        app = App.objects.for_workspace(workspace).filter(pk=app_id).first()
    except (ValueError, ValidationError):  # not a UUID: as unknown as any other id
        app = None
    if app is None:
        raise NotFound("No such app in this workspace.")
    return app


def app_by_site_code(*, code: str) -> App | None:
    """The app behind a public link; None when the code is unknown or the site is off."""
    return App.objects.select_related("workspace").filter(site_code=code, enable_site=True).first()


def message_list(*, app: App) -> QuerySet[Message]:
    """The app's messages, newest first, with their feedback."""
    return (
        Message.objects.for_workspace(app.workspace)
        .filter(app=app)
        .prefetch_related("feedbacks")
        .order_by("-created_at", "-id")
    )
