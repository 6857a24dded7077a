"""Makers for the chat routes' path parameters: parameter name → an id of an object that
lives in the given team's workspace. Merged into routes.OBJECT_IN_WORKSPACE."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import Team


def _app(team: Team):
    from apps.chat.models import App  # imported on use: tests.conftest loads before Django

    app = App.objects.for_workspace(team.workspace).filter(name="Victim app").first()
    if app is None:
        from apps.chat.services.apps import app_create
        from apps.tenants.models import Role

        app = app_create(actor=team.members[Role.OWNER], name="Victim app", mode="chat")
    return app


def _app_key(team: Team) -> str:
    from apps.chat.models import AppApiKey

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


def _message(team: Team) -> str:
    from apps.chat.models import Conversation, FromSource, Message, MessageStatus

    app = _app(team)
    message = Message.objects.filter(app=app).first()
    if message is None:
        conversation = Conversation.objects.create(
            workspace=team.workspace, app=app, from_source=FromSource.WEB_APP, name="Victim chat"
        )
        message = Message.objects.create(
            workspace=team.workspace,
            app=app,
            conversation=conversation,
            from_source=FromSource.WEB_APP,
            query="victim question",
            answer="victim answer",
            status=MessageStatus.NORMAL,
        )
    return str(message.id)


def _task(team: Team) -> str:
    from apps.chat.models import Message

    return str(Message.objects.get(pk=_message(team)).task_id)


def _conversation(team: Team) -> str:
    from apps.chat.models import Message

    return str(Message.objects.get(pk=_message(team)).conversation_id)


def _annotation(team: Team) -> str:
    from apps.chat.models import Annotation

    app = _app(team)
    annotation = Annotation.objects.filter(app=app).first()
    if annotation is None:
        annotation = Annotation.objects.create(
            workspace=team.workspace, app=app, question="victim q", answer="victim a"
        )
    return str(annotation.id)


OBJECT_IN_WORKSPACE: dict[str, Callable[[Team], str]] = {
    "app_id": lambda team: str(_app(team).id),
    "key_id": _app_key,
    "message_id": _message,
    "task_id": _task,
    "conversation_id": _conversation,
    "annotation_id": _annotation,
}

# Routes addressed by a secret token (a public link's code) rather than an object id.
TOKEN_ROUTES: set[str] = set()
