"""Conversations of one end user (or of anyone, for the studio's logs): list with Dify's
last_id pagination, rename (or let the model name it, now or after the first answer),
delete."""

from __future__ import annotations

import asyncio
import logging

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from apps.chat.fallbacks import fallback_refs
from apps.chat.models import App, Conversation, EndUser, Message, MessageStatus
from apps.core.errors import DomainError, NotFound
from apps.core.offload import offload
from apps.providers.instance import ModelInstance
from apps.providers.runtime.types import LLMRequest
from apps.providers.runtime.types import Message as LLMMessage

logger = logging.getLogger(__name__)

SORTS = ("created_at", "-created_at", "updated_at", "-updated_at")
MAX_LIMIT = 100
MAX_NAME = 255
DEFAULT_NAME = "New conversation"  # Dify's name until (or unless) the model names it
FIRST_QUESTION_CHARS = 40
NAME_PROMPT = (
    "Give this conversation a short title (at most six words) in the language of the "
    "question. Reply with the title only.\n\nQuestion: {query}"
)


def conversation_name_from_query(query: str) -> str:
    """The first question on one line, shortened: a conversation's name when nobody (and no
    model) named it."""
    name = " ".join(query.split())
    if len(name) <= FIRST_QUESTION_CHARS:
        return name
    return name[: FIRST_QUESTION_CHARS - 1] + "…"


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


async def conversation_name_generate(
    *, app: App, conversation: Conversation, unless_failed: bool = False
) -> str:
    """A title for the conversation from its first question, written by the app's model;
    the question itself, shortened, when the model cannot be reached (or, `unless_failed`,
    when it could not answer that question either)."""
    first = await offload(
        lambda: Message.objects.filter(conversation=conversation).order_by("created_at").first()
    )()
    query = first.query if first else ""
    model = (app.config.get("model") or {}) if isinstance(app.config, dict) else {}
    failed = first is not None and first.status == MessageStatus.ERROR
    name = ""
    if query and model.get("provider") and model.get("name") and not (unless_failed and failed):
        request = LLMRequest(
            model=model["name"],
            messages=[LLMMessage("user", NAME_PROMPT.format(query=query[:2000]))],
            parameters={"max_tokens": 32, "temperature": 0},
        )
        instance = ModelInstance(
            workspace=app.workspace_id,
            provider=model["provider"],
            model=model["name"],
            fallbacks=fallback_refs(app.config),
        )
        try:
            name = (await instance.invoke_llm(request)).text
        except DomainError:  # the model failed or is gone: name it from the question
            name = ""
    name = " ".join(name.strip().strip('"').split())[:MAX_NAME]
    conversation.name = name or conversation_name_from_query(query) or conversation.name
    await offload(conversation.save)(update_fields=["name", "updated_at"])
    return conversation.name


_naming: set[asyncio.Task] = set()  # the naming tasks under way, referenced until done


def conversation_name_later(*, app: App, conversation_id, after: asyncio.Future | None) -> None:
    """Let the model name a new conversation once its first turn (`after`, the turn's
    task) is over (Dify's auto_generate_name), in a task of its own: the answer never
    waits for the title. Call from the event loop."""

    async def name() -> None:
        if after is not None:
            await asyncio.wait({after})  # however the turn ended, without cancelling it
        try:
            found = Conversation.objects.for_workspace(app.workspace_id).filter(
                app=app, pk=conversation_id
            )
            conversation = await offload(found.first)()
            if conversation is not None:
                await conversation_name_generate(
                    app=app, conversation=conversation, unless_failed=True
                )
        except Exception:  # a background chore: log it, never break anything else
            logger.exception("Naming conversation %s failed", conversation_id)

    task = asyncio.create_task(name())
    _naming.add(task)
    task.add_done_callback(_naming.discard)


def conversation_delete(*, app: App, end_user: EndUser | None, conversation_id) -> None:
    """Delete the conversation and its messages."""
    conversation_get(app=app, end_user=end_user, conversation_id=conversation_id).delete()
