"""Reads for an app's logs: its messages with their conversation and feedback, filtered by
date, feedback and text. Always inside the app's workspace."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from apps.chat.models import Annotation, App, Message, MessageFeedback
from apps.core.errors import NotFound

FEEDBACK_FILTERS = ("like", "dislike", "none")


def message_log(
    *,
    app: App,
    q: str = "",
    feedback: str = "",
    start: dt.date | None = None,
    end: dt.date | None = None,
    conversation_id=None,
) -> QuerySet[Message]:
    """The app's messages, newest first. `feedback` is like, dislike or none (no rating
    from anyone); `start` and `end` are days in the current time zone, both included."""
    messages = (
        Message.objects.for_workspace(app.workspace)
        .filter(app=app)
        .select_related("conversation")
        .prefetch_related("feedbacks")
        .order_by("-created_at")
    )
    if conversation_id:
        messages = messages.filter(conversation_id=conversation_id)
    if q:
        messages = messages.filter(
            Q(query__icontains=q) | Q(answer__icontains=q) | Q(conversation__name__icontains=q)
        )
    if feedback in ("like", "dislike"):
        messages = messages.filter(
            Exists(MessageFeedback.objects.filter(message=OuterRef("pk"), rating=feedback))
        )
    elif feedback == "none":
        messages = messages.filter(~Exists(MessageFeedback.objects.filter(message=OuterRef("pk"))))
    zone = timezone.get_current_timezone()
    if start:
        messages = messages.filter(
            created_at__gte=dt.datetime.combine(start, dt.time.min, tzinfo=zone)
        )
    if end:
        after = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
        messages = messages.filter(created_at__lt=after)
    return messages


def message_get(*, app: App, message_id) -> Message:
    try:
        message = (
            Message.objects.for_workspace(app.workspace)
            .filter(app=app, pk=message_id)
            .select_related("conversation", "end_user", "user", "annotation")
            .prefetch_related("feedbacks")
            .first()
        )
    except (ValueError, ValidationError):
        message = None
    if message is None:
        raise NotFound("No such message in this app.")
    return message


def conversation_thread(*, message: Message) -> list[Message]:
    """The message's conversation, oldest first (just the message for a completion)."""
    if message.conversation_id is None:
        return [message]
    return list(
        Message.objects.for_workspace(message.workspace_id)
        .filter(conversation_id=message.conversation_id)
        .prefetch_related("feedbacks")
        .order_by("created_at")
    )


def annotation_list(*, app: App, q: str = "") -> QuerySet[Annotation]:
    annotations = Annotation.objects.for_workspace(app.workspace).filter(app=app)
    if q:
        annotations = annotations.filter(Q(question__icontains=q) | Q(answer__icontains=q))
    return annotations.order_by("-updated_at")
