"""Conversations of one end user (or of anyone, for the studio's logs): list with Dify's
last_id pagination, rename (or let the model name it), delete."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from apps.chat.models import App, Conversation, EndUser, Message
from apps.core.errors import DomainError, NotFound
from apps.providers.instance import ModelInstance
from apps.providers.runtime.errors import InvokeError
from apps.providers.runtime.types import LLMRequest
from apps.providers.runtime.types import Message as LLMMessage

SORTS = ("created_at", "-created_at", "updated_at", "-updated_at")
MAX_LIMIT = 100
MAX_NAME = 255
NAME_PROMPT = (
    "Give this conversation a short title (at most six words) in the language of the "
    "question. Reply with the title only.\n\nQuestion: {query}"
)


def _conversations(app: App, end_user: EndUser | None) -> QuerySet[Conversation]:
    rows = Conversation.objects.for_workspace(app.workspace_id).filter(app=app)
    return rows.filter(end_user=end_user) if end_user is not None else rows


def conversation_get(*, app: App, end_user: EndUser | None, conversation_id) -> Conversation:
    """The conversation, if it is this app's and this end user's (None: any end user)."""
    try:
        found = _conversations(app, end_user).filter(pk=conversation_id).first()
    except (ValueError, ValidationError):
        found = None
    if found is None:
        raise NotFound("Conversation Not Exists.")
    return found


def conversation_list(
    *,
    app: App,
    end_user: EndUser | None,
    last_id=None,
    limit: int = 20,
    sort_by: str = "-updated_at",
) -> tuple[list[Conversation], bool]:
    """A page of conversations after `last_id` in `sort_by` order, and whether more follow."""
    if sort_by not in SORTS:
        raise DomainError(f"sort_by must be one of {', '.join(SORTS)}.", code="invalid_param")
    limit = _limit(limit)
    rows = _conversations(app, end_user)
    field = sort_by.lstrip("-")
    if last_id:
        last = conversation_get(app=app, end_user=end_user, conversation_id=last_id)
        value = getattr(last, field)
        rows = rows.filter(**{f"{field}__{'lt' if sort_by.startswith('-') else 'gt'}": value})
    page = list(rows.order_by(sort_by, "-id")[: limit + 1])
    return page[:limit], len(page) > limit


def _limit(limit) -> int:
    try:
        limit = int(limit)
    except (TypeError, ValueError):
        raise DomainError("limit must be a number.", code="invalid_param") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise DomainError(f"limit must be between 1 and {MAX_LIMIT}.", code="invalid_param")
    return limit


def conversation_rename(
    *, app: App, end_user: EndUser | None, conversation_id, name: str = ""
) -> Conversation:
    conversation = conversation_get(app=app, end_user=end_user, conversation_id=conversation_id)
    name = " ".join((name or "").split())
    if not name:
        raise DomainError("name is required unless auto_generate is true.", code="invalid_param")
    conversation.name = name[:MAX_NAME]
    conversation.save(update_fields=["name", "updated_at"])
    return conversation


async def conversation_name_generate(*, app: App, conversation: Conversation) -> str:
    """A title for the conversation from its first question, written by the app's model;
    the question itself, shortened, when the model cannot be reached."""
    from apps.core.offload import offload  # async path only

    first = await offload(
        lambda: Message.objects.filter(conversation=conversation).order_by("created_at").first()
    )()
    query = first.query if first else ""
    model = (app.config.get("model") or {}) if isinstance(app.config, dict) else {}
    name = ""
    if query and model.get("provider") and model.get("name"):
        instance = ModelInstance(
            workspace=app.workspace_id, provider=model["provider"], model=model["name"]
        )
        request = LLMRequest(
            model=model["name"],
            messages=[LLMMessage("user", NAME_PROMPT.format(query=query[:2000]))],
            parameters={"max_tokens": 32, "temperature": 0},
        )
        try:
            name = (await instance.invoke_llm(request)).text
        except InvokeError:
            name = ""
    name = " ".join(name.strip().strip('"').split())[:MAX_NAME] or " ".join(query.split())[:40]
    conversation.name = name or conversation.name
    await offload(conversation.save)(update_fields=["name", "updated_at"])
    return conversation.name


def conversation_delete(*, app: App, end_user: EndUser | None, conversation_id) -> None:
    """Delete the conversation and its messages."""
    conversation_get(app=app, end_user=end_user, conversation_id=conversation_id).delete()
