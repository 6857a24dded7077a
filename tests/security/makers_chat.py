"""Makers for the chat routes' path parameters: parameter name → an id of an object that
lives in the given team's workspace. Merged into routes.OBJECT_IN_WORKSPACE."""

from __future__ import annotations

from collections.abc import Callable

from django.core.files.base import ContentFile

from apps.chat.config import default_config
from apps.chat.models import Annotation, App, AppApiKey, Conversation, EndUser, Message, UploadFile
from apps.chat.services import apps as app_services
from apps.tenants.models import Role
from tests.conftest import Team

VICTIM_USER = "victim-end-user"


def _app(team: Team) -> App:
    found = App.objects.for_workspace(team.workspace).filter(name="Victim app").first()
    if found:
        return found
    config = default_config("chat", provider="openai", model="gpt-4o-mini")
    return app_services.app_create(
        actor=team.members[Role.OWNER], name="Victim app", mode="chat", config=config
    )


def _message(team: Team) -> Message:
    app = _app(team)
    found = Message.objects.for_workspace(team.workspace).filter(app=app).first()
    if found:
        return found
    end_user, _ = EndUser.objects.get_or_create(
        workspace=team.workspace, app=app, source="service_api", session_id=VICTIM_USER
    )
    conversation = Conversation.objects.create(
        workspace=team.workspace, app=app, end_user=end_user, from_source="api", name="Victim"
    )
    return Message.objects.create(
        workspace=team.workspace,
        app=app,
        conversation=conversation,
        end_user=end_user,
        from_source="api",
        query="victim question",
        answer="victim answer",
        status="normal",
    )


def _annotation(team: Team) -> str:
    app = _app(team)
    found = Annotation.objects.for_workspace(team.workspace).filter(app=app).first()
    if found is None:
        found = Annotation.objects.create(
            workspace=team.workspace, app=app, question="victim q", answer="victim a"
        )
    return str(found.id)


def _file(team: Team) -> str:
    app = _app(team)
    found = UploadFile.objects.for_workspace(team.workspace).filter(app=app).first()
    if found is None:
        found = UploadFile.objects.create(
            workspace=team.workspace,
            app=app,
            name="victim.png",
            file=ContentFile(b"\x89PNG\r\n\x1a\n", name="victim.png"),
            size=8,
            extension="png",
            mime_type="image/png",
        )
    return str(found.id)


def _app_key(team: Team) -> str:
    app = _app(team)
    key = AppApiKey.objects.filter(app=app).first()
    if key is None:
        key = AppApiKey.objects.create(
            workspace=team.workspace,
            app=app,
            name="victim app key",
            prefix="app-victim",
            key_hash=f"victim-{team.workspace.id}".ljust(64, "0")[:64],
        )
    return str(key.id)


OBJECT_IN_WORKSPACE: dict[str, Callable[[Team], str]] = {
    "key_id": _app_key,
    "annotation_id": _annotation,
    "file_id": _file,
    "app_id": lambda team: str(_app(team).id),
    "conversation_id": lambda team: str(_message(team).conversation_id),
    "message_id": lambda team: str(_message(team).id),
    "task_id": lambda team: str(_message(team).task_id),
}

# Routes addressed by a secret token (a public link's code) rather than an object id.
# The public web app's routes are walked on their own in tests/chat/test_webapp_isolation.py.
TOKEN_ROUTES: set[str] = {
    "chat/<str:code>",
    "chat/<str:code>/conversations/<uuid:conversation_id>",
    "chat/<str:code>/conversations/<uuid:conversation_id>/rename",
    "chat/<str:code>/conversations/<uuid:conversation_id>/delete",
    "chat/<str:code>/messages/<uuid:message_id>/feedback",
    "completion/<str:code>",
    "completion/<str:code>/saved",
    "completion/<str:code>/saved/<uuid:message_id>/remove",
    "completion/<str:code>/batch",
    "completion/<str:code>/batch/<uuid:batch_id>",
    "completion/<str:code>/batch/<uuid:batch_id>/results.csv",
}
