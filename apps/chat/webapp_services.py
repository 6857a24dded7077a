"""Writes a web app visitor makes besides chatting: rename or delete a conversation, rate an
answer, keep a text generator result. The caller has already looked the object up through
apps/chat/visitors.py, so it is the visitor's own."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet

from apps.chat.models import Conversation, EndUser, Message, MessageFeedback, SavedMessage
from apps.chat.visitors import Visitor
from apps.core.errors import DomainError

MAX_NAME = 255
MAX_COMMENT = 2000


def conversation_rename(*, conversation: Conversation, name: str) -> Conversation:
    name = " ".join((name or "").split())
    if not name:
        raise DomainError("Give the conversation a name.", code="invalid_param")
    if len(name) > MAX_NAME:
        raise DomainError(f"A name can be at most {MAX_NAME} characters.", code="invalid_param")
    conversation.name = name
    conversation.save(update_fields=["name", "updated_at"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


def message_feedback_set(
    *, message: Message, end_user: EndUser, rating: str, content: str = ""
) -> MessageFeedback | None:
    """Like or dislike an answer (with an optional comment); an empty rating clears it."""
    rating = (rating or "").strip()
    if rating not in ("", *MessageFeedback.Rating.values):
        raise DomainError("Rate the answer with like or dislike.", code="invalid_param")
    content = (content or "").strip()
    if len(content) > MAX_COMMENT:
        raise DomainError(
            f"A comment can be at most {MAX_COMMENT} characters.", code="invalid_param"
        )
    existing = MessageFeedback.objects.for_workspace(message.workspace_id).filter(
        message=message, from_source=MessageFeedback.Source.USER
    )
    with transaction.atomic():
        if not rating:
            existing.delete()
            return None
        feedback, _ = MessageFeedback.objects.update_or_create(
            workspace_id=message.workspace_id,
            message=message,
            from_source=MessageFeedback.Source.USER,
            defaults={"rating": rating, "content": content, "end_user": end_user},
        )
    return feedback


# --- Saved results (text generator) --------------------------------------------------------------


def saved_messages(*, visitor: Visitor) -> QuerySet[SavedMessage]:
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
    saved_messages(visitor=visitor).filter(message=message).delete()
