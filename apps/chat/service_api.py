"""Dify's Service API for apps under /v1/ (app API keys): chat-messages,
completion-messages, stop, conversations, messages, feedbacks, suggested, parameters,
meta, info, files/upload. Bodies and errors as Dify sends them, so Dify's SDKs work.

`user` (the caller's end-user id) is required wherever Dify requires it; it names an
EndUser of the app, and conversations and messages are found only for that end user."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Literal

from django.http import FileResponse, JsonResponse, StreamingHttpResponse
from ninja import Query, Router, Schema
from pydantic import Field

from apps.chat import generation
from apps.chat.auth import AppApiKeyAuth
from apps.chat.models import AppMode, EndUser, FromSource, Message
from apps.chat.services import conversations, messages, uploads
from apps.chat.services.end_users import end_user_find, end_user_get_or_create
from apps.core.errors import DomainError, NotFound
from apps.core.offload import offload
from apps.tenants.models import Membership, Role

router = Router(tags=["service api"], auth=AppApiKeyAuth())

PING_INTERVAL = 10.0  # seconds between keep-alives on a quiet stream
CHAT_MODES = (AppMode.CHAT, AppMode.AGENT_CHAT, AppMode.ADVANCED_CHAT)
SOURCE = EndUser.Source.SERVICE_API


# --- Schemas (only what a caller may choose; ids the server decides are never read) -----


class FileIn(Schema):
    type: str = "image"
    transfer_method: str
    url: str | None = None
    remote_url: str | None = None
    upload_file_id: str | None = None


class CompletionIn(Schema):
    inputs: dict | None = None
    query: str = ""
    files: list[FileIn] | None = None
    response_mode: Literal["blocking", "streaming"] = "blocking"
    user: str = Field(min_length=1, max_length=255)


class ChatIn(CompletionIn):
    query: str = Field(min_length=1)
    conversation_id: str | None = None
    parent_message_id: str | None = None
    auto_generate_name: bool = True


class UserIn(Schema):
    user: str = Field(min_length=1, max_length=255)


class RenameIn(UserIn):
    name: str = ""
    auto_generate: bool = False


class FeedbackIn(UserIn):
    rating: Literal["like", "dislike"] | None = None
    content: str = ""


class UserQuery(Schema):
    user: str = Field(min_length=1, max_length=255)


class MessagesQuery(UserQuery):
    conversation_id: str
    first_id: str | None = None
    limit: int = 20


class ConversationsQuery(UserQuery):
    last_id: str | None = None
    limit: int = 20
    sort_by: str = "-updated_at"


# --- Chat and completion ---------------------------------------------------------------


@router.post("/chat-messages")
async def chat_messages(request, body: ChatIn):
    if request.app.mode not in CHAT_MODES:
        raise DomainError(
            "Please check if your app mode matches the right API route.", code="not_chat_app"
        )
    return await _run(request, body, conversation_id=body.conversation_id or None)


@router.post("/completion-messages")
async def completion_messages(request, body: CompletionIn):
    if request.app.mode != AppMode.COMPLETION:
        raise DomainError(
            "Please check if your app mode matches the right API route.", code="app_unavailable"
        )
    return await _run(request, body)


async def _run(request, body: CompletionIn, conversation_id=None):
    app = request.app
    end_user = await offload(end_user_get_or_create)(app=app, source=SOURCE, session_id=body.user)
    run = await generation.start(
        app=app,
        from_source=FromSource.API,
        query=body.query,
        inputs=body.inputs,
        files=[f.dict(exclude_none=True) for f in body.files or []],
        end_user=end_user,
        conversation_id=conversation_id,
        parent_message_id=getattr(body, "parent_message_id", None),
        conversation_name=conversations.DEFAULT_NAME,
    )
    if run.conversation_id and not conversation_id and getattr(body, "auto_generate_name", False):
        # As Dify: the model names a new conversation after its first answer, unhurried.
        conversations.conversation_name_later(
            app=app, conversation_id=run.conversation_id, after=run.task
        )
    if body.response_mode == "streaming":
        return sse_response(run, generation.events(run))
    return await _blocking(request, run)


async def _blocking(request, run: generation.Run):
    answer, end = "", None
    async for event in generation.events(run):
        if isinstance(event, generation.AnswerChunk):
            answer += event.answer
        elif isinstance(event, generation.AnswerReplaced):
            answer = event.answer
        elif isinstance(event, generation.GenerationFailed):
            body = {"code": event.code, "message": event.message, "status": event.status}
            return JsonResponse(body, status=event.status)
        elif isinstance(event, generation.MessageEnd):
            end = event
            break
    body = {
        "event": "message",
        "task_id": run.task_id,
        "id": run.message_id,
        "message_id": run.message_id,
        "mode": run.mode,
        "answer": end.answer if end else answer,
        "metadata": end.metadata if end else {},
        "created_at": run.created_at,
    }
    if run.conversation_id:
        body["conversation_id"] = run.conversation_id
    return body


def sse_response(run: generation.Run, events: AsyncIterator) -> StreamingHttpResponse:
    response = StreamingHttpResponse(sse_frames(run, events), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


_DONE = object()


async def sse_frames(run: generation.Run, events: AsyncIterator) -> AsyncIterator[bytes]:
    """Dify's SSE: `data: {json}\\n\\n` per event, `event: ping\\n\\n` when quiet for
    PING_INTERVAL. Ends after message_end or error. Leaving early (the client hung up)
    ends this watcher only; the run goes on and is saved."""
    queue: asyncio.Queue = asyncio.Queue()

    async def pump():
        try:
            async for event in events:
                queue.put_nowait(event)
        finally:
            queue.put_nowait(_DONE)

    task = asyncio.create_task(pump())
    try:
        while True:
            try:
                if queue.empty():  # (asyncio.timeout costs less per token than wait_for)
                    async with asyncio.timeout(PING_INTERVAL):
                        first = await queue.get()
                else:
                    first = queue.get_nowait()
            except TimeoutError:
                yield b"event: ping\n\n"
                continue
            batch = [first]
            while not queue.empty():
                batch.append(queue.get_nowait())
            out, finished = [], False
            for event in _joined_chunks(batch):
                if event is _DONE:
                    finished = True
                    break
                if isinstance(event, generation.SuggestedQuestions):
                    continue
                out.append(_frame(run.envelope(event)))
                if isinstance(event, generation.MessageEnd | generation.GenerationFailed):
                    finished = True
                    break
            if out:
                yield b"".join(out)
            if finished:
                return
    finally:
        task.cancel()


def _joined_chunks(batch: list) -> list:
    """Answer chunks that arrived together as one `message` event: a client joins the
    answers of consecutive message events, and a busy server writes fewer of them."""
    out: list = []
    for event in batch:
        if isinstance(event, generation.AnswerChunk) and out:
            last = out[-1]
            if isinstance(last, generation.AnswerChunk):
                out[-1] = generation.AnswerChunk(last.answer + event.answer)
                continue
        out.append(event)
    return out


def _frame(data: dict) -> bytes:
    # json's spacing, as Dify writes it: `{"event": "message", …}`.
    return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"


@router.post("/chat-messages/{task_id}/stop")
async def chat_stop(request, task_id: str, body: UserIn):
    return await _stop(request, task_id, body.user)


@router.post("/completion-messages/{task_id}/stop")
async def completion_stop(request, task_id: str, body: UserIn):
    return await _stop(request, task_id, body.user)


async def _stop(request, task_id: str, user: str):
    await offload(_task_of)(request.app, task_id, user)
    await generation.stop(task_id)
    return {"result": "success"}


def _task_of(app, task_id: str, user: str) -> Message:
    end_user = end_user_find(app=app, source=SOURCE, session_id=user)
    if end_user is None:
        raise NotFound("Task Not Exists.")
    return messages.message_by_task(app=app, end_user=end_user, task_id=task_id)


# --- Conversations and messages -------------------------------------------------------


def _message_out(message: Message) -> dict:
    feedback = next((f for f in message.feedbacks.all() if f.from_source == "user"), None)
    return {
        "id": str(message.pk),
        "conversation_id": str(message.conversation_id) if message.conversation_id else None,
        "parent_message_id": str(message.parent_message_id) if message.parent_message_id else None,
        "inputs": message.inputs,
        "query": message.query,
        "answer": message.answer,
        "message_files": [],
        "feedback": {"rating": feedback.rating} if feedback else None,
        "retriever_resources": message.retriever_resources,
        "agent_thoughts": [],
        "status": message.status,
        "error": message.error or None,
        "created_at": int(message.created_at.timestamp()),
    }


def _conversation_out(conversation) -> dict:
    return {
        "id": str(conversation.pk),
        "name": conversation.name,
        "inputs": conversation.inputs,
        "status": "normal",
        "introduction": "",
        "created_at": int(conversation.created_at.timestamp()),
        "updated_at": int(conversation.updated_at.timestamp()),
    }


def _known_end_user(app, user: str) -> EndUser:
    end_user = end_user_find(app=app, source=SOURCE, session_id=user)
    if end_user is None:
        raise NotFound("Conversation Not Exists.")
    return end_user


@router.get("/messages")
def message_list(request, params: Query[MessagesQuery]):
    end_user = _known_end_user(request.app, params.user)
    rows, has_more = messages.message_list(
        app=request.app,
        end_user=end_user,
        conversation_id=params.conversation_id,
        first_id=params.first_id,
        limit=params.limit,
    )
    return {"limit": params.limit, "has_more": has_more, "data": [_message_out(m) for m in rows]}


@router.get("/conversations")
def conversation_list(request, params: Query[ConversationsQuery]):
    end_user = end_user_find(app=request.app, source=SOURCE, session_id=params.user)
    if end_user is None:
        conversations._limit(params.limit)
        return {"limit": params.limit, "has_more": False, "data": []}
    rows, has_more = conversations.conversation_list(
        app=request.app,
        end_user=end_user,
        last_id=params.last_id,
        limit=params.limit,
        sort_by=params.sort_by,
    )
    return {
        "limit": params.limit,
        "has_more": has_more,
        "data": [_conversation_out(c) for c in rows],
    }


@router.post("/conversations/{conversation_id}/name")
async def conversation_rename(request, conversation_id: str, body: RenameIn):
    app = request.app
    end_user = await offload(_known_end_user)(app, body.user)
    if body.auto_generate:
        conversation = await offload(conversations.conversation_get)(
            app=app, end_user=end_user, conversation_id=conversation_id
        )
        await conversations.conversation_name_generate(app=app, conversation=conversation)
    else:
        conversation = await offload(conversations.conversation_rename)(
            app=app, end_user=end_user, conversation_id=conversation_id, name=body.name
        )
    return _conversation_out(conversation)


@router.delete("/conversations/{conversation_id}", response={204: None})
def conversation_delete(request, conversation_id: str, body: UserIn | None = None):
    user = body.user if body else request.GET.get("user", "")
    end_user = _known_end_user(request.app, user)
    conversations.conversation_delete(
        app=request.app, end_user=end_user, conversation_id=conversation_id
    )
    return 204, None


@router.post("/messages/{message_id}/feedbacks")
def message_feedback(request, message_id: str, body: FeedbackIn):
    end_user = end_user_find(app=request.app, source=SOURCE, session_id=body.user)
    if end_user is None:
        raise NotFound("Message Not Exists.")
    messages.message_feedback(
        app=request.app,
        message_id=message_id,
        rating=body.rating,
        content=body.content,
        end_user=end_user,
    )
    return {"result": "success"}


@router.get("/messages/{message_id}/suggested")
async def message_suggested(request, message_id: str, params: Query[UserQuery]):
    end_user = await offload(end_user_find)(app=request.app, source=SOURCE, session_id=params.user)
    if end_user is None:
        raise NotFound("Message Not Exists.")
    questions = await messages.message_suggested(
        app=request.app, end_user=end_user, message_id=message_id
    )
    return {"result": "success", "data": questions}


# --- About the app ------------------------------------------------------------------


@router.get("/parameters")
def parameters(request):
    config = request.app.config or {}
    moderation = config.get("sensitive_word_avoidance") or {}
    return {
        "opening_statement": config.get("opening_statement") or "",
        "suggested_questions": config.get("suggested_questions") or [],
        "suggested_questions_after_answer": {
            "enabled": bool((config.get("suggested_questions_after_answer") or {}).get("enabled"))
        },
        "speech_to_text": {"enabled": bool((config.get("speech_to_text") or {}).get("enabled"))},
        "text_to_speech": config.get("text_to_speech") or {"enabled": False},
        "retriever_resource": {
            "enabled": bool((config.get("retriever_resource") or {}).get("enabled", True))
        },
        "annotation_reply": {
            "enabled": bool((config.get("annotation_reply") or {}).get("enabled"))
        },
        "more_like_this": {"enabled": bool((config.get("more_like_this") or {}).get("enabled"))},
        "user_input_form": config.get("user_input_form") or [],
        # The keyword list stays private: knowing it is knowing how to get around it.
        "sensitive_word_avoidance": {
            "enabled": bool(moderation.get("enabled")),
            "type": moderation.get("type") or "keywords",
        },
        "file_upload": config.get("file_upload") or {"image": {"enabled": False}},
        "system_parameters": {
            "image_file_size_limit": uploads.IMAGE_LIMIT_MB,
            "file_size_limit": uploads.IMAGE_LIMIT_MB,
            "audio_file_size_limit": 0,
            "video_file_size_limit": 0,
            "workflow_file_upload_limit": 0,
        },
    }


@router.get("/meta")
def meta(request):
    return {"tool_icons": {}}


@router.get("/info")
def info(request):
    app = request.app
    author = app.created_by
    return {
        "name": app.name,
        "description": app.description,
        "tags": [],
        "mode": app.mode,
        "author_name": (author.name or author.email) if author else "",
    }


# --- Annotations and feedback of the app ------------------------------------------------


class AnnotationIn(Schema):
    # Checked by the service after the lookup, so a foreign id is "not found" first.
    question: str = ""
    answer: str = ""


class PageQuery(Schema):
    page: int = 1
    limit: int = 20


def _key_actor(app) -> Membership:
    """Who acts for an app key: an editor of the app's workspace (the key was made by one)."""
    return Membership(workspace=app.workspace, role=Role.EDITOR)


def _annotation_out(annotation) -> dict:
    return {
        "id": str(annotation.pk),
        "question": annotation.question,
        "answer": annotation.answer,
        "hit_count": annotation.hit_count,
        "created_at": int(annotation.created_at.timestamp()),
    }


@router.get("/apps/annotations")
def annotation_list(request, params: Query[PageQuery]):
    rows, total, has_more = messages.annotation_list(
        app=request.app, page=params.page, limit=params.limit
    )
    return {
        "data": [_annotation_out(a) for a in rows],
        "has_more": has_more,
        "limit": params.limit,
        "total": total,
        "page": params.page,
    }


@router.post("/apps/annotations")
def annotation_create(request, body: AnnotationIn):
    app = request.app
    annotation = messages.annotation_create(
        actor=_key_actor(app), app=app, question=body.question, answer=body.answer
    )
    return _annotation_out(annotation)


@router.put("/apps/annotations/{annotation_id}")
def annotation_update(request, annotation_id: str, body: AnnotationIn):
    app = request.app
    annotation = messages.annotation_update(
        actor=_key_actor(app),
        app=app,
        annotation_id=annotation_id,
        question=body.question,
        answer=body.answer,
    )
    return _annotation_out(annotation)


@router.delete("/apps/annotations/{annotation_id}", response={204: None})
def annotation_delete(request, annotation_id: str):
    app = request.app
    messages.annotation_delete(actor=_key_actor(app), app=app, annotation_id=annotation_id)
    return 204, None


@router.get("/app/feedbacks")
def feedback_list(request, params: Query[PageQuery]):
    rows = messages.feedback_list(app=request.app, page=params.page, limit=params.limit)
    return {
        "data": [
            {
                "id": str(f.pk),
                "app_id": str(request.app.pk),
                "conversation_id": str(f.message.conversation_id or "") or None,
                "message_id": str(f.message_id),
                "rating": f.rating,
                "content": f.content,
                "from_source": f.from_source,
                "from_end_user_id": str(f.end_user_id) if f.end_user_id else None,
                "from_account_id": str(f.user_id) if f.user_id else None,
                "created_at": f.created_at.isoformat(),
                "updated_at": f.created_at.isoformat(),
            }
            for f in rows
        ]
    }


@router.get("/site")
def site(request):
    app = request.app
    return {
        "title": app.name,
        "chat_color_theme": None,
        "chat_color_theme_inverted": False,
        "icon_type": "emoji",
        "icon": app.icon,
        "icon_background": app.icon_background,
        "icon_url": None,
        "description": app.description,
        "copyright": None,
        "privacy_policy": None,
        "custom_disclaimer": "",
        "default_language": "en-US",
        "show_workflow_steps": False,
        "use_icon_as_answer_icon": False,
    }


# --- Files ---------------------------------------------------------------------------


@router.post("/files/upload", response={201: dict})
def files_upload(request):
    upload = uploads.upload_file_create(
        app=request.app,
        files=request.FILES.getlist("file"),
        session_id=request.POST.get("user", ""),
    )
    return 201, uploads.upload_out(upload)


@router.get("/files/{file_id}/preview")
def file_preview(request, file_id: str):
    upload = uploads.upload_file_get(app=request.app, file_id=file_id)
    response = FileResponse(upload.file.open("rb"), content_type=upload.mime_type)
    response["Content-Disposition"] = "inline"
    response["X-Content-Type-Options"] = "nosniff"
    return response
