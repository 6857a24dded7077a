"""End users: whoever uses an app from outside the workspace, one row per (app, source,
session id): the Service API's `user` string, or a web-app browser session."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from apps.chat.models import App, EndUser
from apps.core.errors import DomainError

MAX_SESSION_ID = 255


def end_user_get_or_create(*, app: App, source: str, session_id: str, user=None) -> EndUser:
    session_id = (session_id or "").strip() if isinstance(session_id, str) else ""
    if not session_id:
        raise DomainError("user is required.", code="invalid_param")
    if len(session_id) > MAX_SESSION_ID:
        raise DomainError(
            f"user can be at most {MAX_SESSION_ID} characters long.", code="invalid_param"
        )
    lookup = {"app": app, "source": source, "session_id": session_id}
    found = EndUser.objects.for_workspace(app.workspace_id).filter(**lookup).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return EndUser.objects.create(workspace_id=app.workspace_id, user=user, **lookup)
    except IntegrityError:  # created meanwhile by a concurrent request
        return EndUser.objects.get(**lookup)


def end_user_find(*, app: App, source: str, session_id: str) -> EndUser | None:
    """The end user if they have used the app before; reads never create one."""
    if not isinstance(session_id, str) or not session_id.strip():
        raise DomainError("user is required.", code="invalid_param")
    return (
        EndUser.objects.for_workspace(app.workspace_id)
        .filter(app=app, source=source, session_id=session_id.strip())
        .first()
    )
