"""Reads for apps, always inside one workspace: a foreign id is simply "not found"."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from apps.chat.models import App, Conversation, Message
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


def message_branch(*, conversation: Conversation, last: Message | None = None) -> list[Message]:
    """The turns leading to `last` (default: the newest), oldest first, in one query. Each
    turn names the turn before it as its parent and a regenerated answer is a sibling of
    the one it replaces, so walking parents from the end leaves replaced answers out."""
    messages = list(
        Message.objects.for_workspace(conversation.workspace_id)
        .filter(conversation=conversation)
        .order_by("created_at")
    )
    by_id = {m.pk: m for m in messages}
    branch, current = [], by_id.get(last.pk) if last else (messages[-1] if messages else None)
    while current is not None and len(branch) < len(messages):
        branch.append(current)
        current = by_id.get(current.parent_message_id)
    branch.reverse()
    return branch
