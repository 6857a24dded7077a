"""Saved results of a text generator: the "Saved" list a web app visitor keeps. The caller
has looked the message up as the visitor's own (apps/chat/visitors.py)."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.chat.models import Message, SavedMessage
from apps.chat.visitors import Visitor
from apps.core.errors import DomainError


def saved_message_list(*, visitor: Visitor) -> QuerySet[SavedMessage]:
    return (
        SavedMessage.objects.for_workspace(visitor.workspace)
        .filter(app=visitor.app, end_user=visitor.end_user)
        .select_related("message")
        .order_by("-created_at")
    )


def saved_message_add(*, visitor: Visitor, message: Message) -> SavedMessage:
    if not message.answer:
        raise DomainError("There is nothing to save yet.", code="invalid_param")
    saved, _ = SavedMessage.objects.get_or_create(
        workspace=visitor.workspace, app=visitor.app, end_user=visitor.end_user, message=message
    )
    return saved


def saved_message_remove(*, visitor: Visitor, message: Message) -> None:
    saved_message_list(visitor=visitor).filter(message=message).delete()
