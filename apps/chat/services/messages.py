"""Messages of a conversation (Dify's first_id pagination), feedback on them, suggested
follow-ups, and annotations (curated answers for annotation reply)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.chat.fallbacks import fallback_refs
from apps.chat.models import Annotation, App, EndUser, Message, MessageFeedback
from apps.chat.services.apps import require
from apps.chat.services.conversations import _limit, conversation_get
from apps.core.errors import DomainError, NotFound
from apps.tenants.models import Membership

RATINGS = ("like", "dislike")
MAX_FEEDBACK = 2000
MAX_ANNOTATION = 10_000


def message_get(*, app: App, end_user: EndUser | None, message_id) -> Message:
    """This app's message, asked by this end user (None: anyone's)."""
    rows = Message.objects.for_workspace(app.workspace_id).filter(app=app)
    if end_user is not None:
        rows = rows.filter(end_user=end_user)
    try:
        found = rows.filter(pk=message_id).first()
    except (ValueError, ValidationError):
        found = None
    if found is None:
        raise NotFound("Message Not Exists.")
    return found


def message_by_task(*, app: App, end_user: EndUser | None, task_id) -> Message:
    """The message a task id belongs to, if it is this app's and this end user's."""
    rows = Message.objects.for_workspace(app.workspace_id).filter(app=app, end_user=end_user)
    try:
        found = rows.filter(task_id=task_id).first()
    except (ValueError, ValidationError):
        found = None
    if found is None:
        raise NotFound("Task Not Exists.")
    return found


def message_list(
    *, app: App, end_user: EndUser | None, conversation_id, first_id=None, limit: int = 20
) -> tuple[list[Message], bool]:
    """The `limit` messages before `first_id` (the newest when not given), oldest first,
    and whether older ones remain: how a chat window scrolls back."""
    conversation = conversation_get(app=app, end_user=end_user, conversation_id=conversation_id)
    limit = _limit(limit)
    rows = Message.objects.for_workspace(app.workspace_id).filter(conversation=conversation)
    if first_id:
        try:
            first = rows.filter(pk=first_id).first()
        except (ValueError, ValidationError):
            first = None
        if first is None:
            raise NotFound("First Message Not Exists.")
        rows = rows.filter(created_at__lt=first.created_at)
    page = list(
        rows.select_related("parent_message")
        .prefetch_related("feedbacks")
        .order_by("-created_at")[: limit + 1]
    )
    return list(reversed(page[:limit])), len(page) > limit


def message_feedback(
    *,
    app: App,
    message_id,
    rating: str | None,
    content: str = "",
    end_user: EndUser | None = None,
    actor: Membership | None = None,
) -> MessageFeedback | None:
    """Like, dislike (with an optional comment), or withdraw (rating None) the feedback of
    the end user who asked, or of a workspace member in the logs."""
    if rating not in (*RATINGS, None):
        raise DomainError("rating must be like, dislike or null.", code="invalid_param")
    content = (content or "").strip()
    if len(content) > MAX_FEEDBACK:
        raise DomainError(
            f"content can be at most {MAX_FEEDBACK} characters long.", code="invalid_param"
        )
    if actor is not None:
        require(actor, "apps.use")
        message = message_get(app=app, end_user=None, message_id=message_id)
        source = MessageFeedback.Source.ADMIN
    else:
        message = message_get(app=app, end_user=end_user, message_id=message_id)
        source = MessageFeedback.Source.USER
    existing = MessageFeedback.objects.filter(message=message, from_source=source)
    if rating is None:
        existing.delete()
        return None
    with transaction.atomic():
        feedback, _ = MessageFeedback.objects.update_or_create(
            message=message,
            from_source=source,
            defaults={
                "workspace_id": app.workspace_id,
                "rating": rating,
                "content": content,
                "end_user": end_user,
                "user_id": actor.user_id if actor else None,
            },
        )
    return feedback


def suggestions_enabled(app: App) -> bool:
    return bool((app.config.get("suggested_questions_after_answer") or {}).get("enabled"))


async def message_suggested(*, app: App, end_user: EndUser | None, message_id) -> list[str]:
    """Follow-up questions for a message: those made with the answer, or made now."""
    from apps.chat.generation.features import suggested_questions  # the async path only
    from apps.core.offload import offload

    message = await offload(message_get)(app=app, end_user=end_user, message_id=message_id)
    if not suggestions_enabled(app):
        raise DomainError("Suggested Questions Is Disabled.", code="bad_request")
    if message.suggested_questions:
        return list(message.suggested_questions)
    model = app.config.get("model") or {}
    questions = await suggested_questions(
        workspace_id=app.workspace_id,
        provider=model.get("provider", ""),
        model=model.get("name", ""),
        fallbacks=fallback_refs(app.config),
        history=[(message.query, message.answer)],
    )
    await offload(Message.objects.filter(pk=message.pk).update)(suggested_questions=questions)
    return questions


# --- Annotations ---------------------------------------------------------------------


def _clean_pair(question: str, answer: str) -> tuple[str, str]:
    question, answer = (question or "").strip(), (answer or "").strip()
    if not question or not answer:
        raise DomainError("An annotation needs a question and an answer.", code="invalid_param")
    if len(question) > MAX_ANNOTATION or len(answer) > MAX_ANNOTATION:
        raise DomainError(
            f"Question and answer can be at most {MAX_ANNOTATION} characters.",
            code="invalid_param",
        )
    return question, answer


def annotation_get(*, app: App, annotation_id) -> Annotation:
    try:
        found = (
            Annotation.objects.for_workspace(app.workspace_id)
            .filter(app=app, pk=annotation_id)
            .first()
        )
    except (ValueError, ValidationError):
        found = None
    if found is None:
        raise NotFound("Annotation Not Exists.")
    return found


def annotation_list(*, app: App, page: int = 1, limit: int = 20) -> tuple[list, int, bool]:
    """A page of the app's annotations, newest first: (rows, total, has_more)."""
    limit = _limit(limit)
    if not isinstance(page, int) or page < 1:
        raise DomainError("page must be 1 or more.", code="invalid_param")
    rows = Annotation.objects.for_workspace(app.workspace_id).filter(app=app)
    total = rows.count()
    start = (page - 1) * limit
    return list(rows.order_by("-created_at")[start : start + limit]), total, start + limit < total


def feedback_list(*, app: App, page: int = 1, limit: int = 20) -> list[MessageFeedback]:
    limit = _limit(limit)
    if not isinstance(page, int) or page < 1:
        raise DomainError("page must be 1 or more.", code="invalid_param")
    rows = MessageFeedback.objects.for_workspace(app.workspace_id).filter(message__app=app)
    start = (page - 1) * limit
    return list(rows.select_related("message").order_by("-created_at")[start : start + limit])


def annotation_create(
    *, actor: Membership, app: App, question: str, answer: str, message: Message | None = None
) -> Annotation:
    """A curated answer. Its question is embedded on the next annotation-reply lookup."""
    require(actor, "apps.edit")
    question, answer = _clean_pair(question, answer)
    return Annotation.objects.create(
        workspace_id=app.workspace_id,
        app=app,
        question=question,
        answer=answer,
        message=message,
        created_by_id=actor.user_id,
    )


def annotation_update(
    *, actor: Membership, app: App, annotation_id, question: str, answer: str
) -> Annotation:
    require(actor, "apps.edit")
    annotation = annotation_get(app=app, annotation_id=annotation_id)
    question, answer = _clean_pair(question, answer)
    if question != annotation.question:  # its vector no longer fits
        annotation.embedding, annotation.embedding_model = None, ""
    annotation.question, annotation.answer = question, answer
    annotation.save(
        update_fields=["question", "answer", "embedding", "embedding_model", "updated_at"]
    )
    return annotation


def annotation_delete(*, actor: Membership, app: App, annotation_id) -> None:
    require(actor, "apps.edit")
    annotation_get(app=app, annotation_id=annotation_id).delete()


def message_annotate(
    *, actor: Membership, app: App, message_id, answer: str | None = None
) -> Annotation:
    """Mark a message as an annotation: its question with the given (or its own) answer.
    A message already annotated has its annotation updated instead."""
    require(actor, "apps.edit")
    message = message_get(app=app, end_user=None, message_id=message_id)
    answer = message.answer if answer is None else answer
    existing = Annotation.objects.for_workspace(app.workspace_id).filter(message=message).first()
    if existing is not None:
        return annotation_update(
            actor=actor, app=app, annotation_id=existing.pk, question=message.query, answer=answer
        )
    annotation = annotation_create(
        actor=actor, app=app, question=message.query, answer=answer, message=message
    )
    Message.objects.filter(pk=message.pk).update(annotation=annotation)
    return annotation
