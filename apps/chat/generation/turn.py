"""Starting a turn (sync, in a pool thread): check the request against the app's
configuration, resolve the model, create the conversation and the running Message row,
and gather what the prompt needs (history, images)."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.chat import selectors
from apps.chat.fallbacks import fallback_refs
from apps.chat.generation.inputs import InvalidInput, inputs_clean
from apps.chat.models import App, AppMode, Conversation, EndUser, Message, MessageStatus, UploadFile
from apps.chat.services.conversations import conversation_name_from_query
from apps.core.errors import DomainError, NotFound
from apps.providers.instance import ModelRef
from apps.providers.resolution import ModelNotConfigured, resolve
from apps.providers.runtime.types import ImagePart
from apps.providers.schema import ModelSpec

RUNNABLE_MODES = (AppMode.CHAT, AppMode.COMPLETION)
MAX_HISTORY_MESSAGES = 500  # Dify's cap when no window is set
MAX_QUERY_CHARS = 100_000
# parent_message_id meaning "no parent": answer as the conversation's first turn (Dify's
# UUID_NIL), e.g. to regenerate the first answer. None means "after the newest turn".
NO_PARENT = "00000000-0000-0000-0000-000000000000"


class AppUnavailable(DomainError):
    code = "app_unavailable"
    status = 400


@dataclass
class ModelSetup:
    provider: str
    name: str
    parameters: dict
    stop: list[str]
    spec: ModelSpec | None
    # The models that answer, in order, when this one fails (ModelInstance passes over
    # any no longer set up).
    fallbacks: list[ModelRef] = field(default_factory=list)

    @property
    def vision(self) -> bool:
        return bool(self.spec and "vision" in self.spec.features)

    @property
    def context_size(self) -> int:
        return (self.spec.context_size if self.spec else None) or 4096


@dataclass
class Turn:
    """Everything the producer needs, read from the database before it starts."""

    app: App
    config: dict
    model: ModelSetup
    message: Message
    conversation: Conversation | None
    query: str
    inputs: dict
    images: list[ImagePart] = field(default_factory=list)
    history: list[tuple[str, str]] = field(default_factory=list)  # (query, answer), oldest first


def model_setup(*, app: App, config: dict) -> ModelSetup:
    model = config.get("model") or {}
    provider, name = model.get("provider") or "", model.get("name") or ""
    if not provider or not name:
        raise AppUnavailable("App unavailable, please check your app configurations: no model.")
    try:
        target = resolve(
            workspace=app.workspace_id, provider=provider, model_type="llm", model=name
        )
    except ModelNotConfigured as exc:
        raise DomainError(str(exc), code="provider_not_initialize") from exc
    except NotFound as exc:
        raise AppUnavailable(f"App unavailable: {exc.message}") from exc
    params = dict(model.get("completion_params") or {})
    stop = params.pop("stop", None) or []
    stop = [*([stop] if isinstance(stop, str) else stop), *(config.get("stop") or [])]
    params = {k: v for k, v in params.items() if v is not None}
    return ModelSetup(
        provider,
        name,
        params,
        [s for s in stop if s][:4],
        target.spec,
        fallback_refs(config),
    )


def turn_begin(
    *,
    app: App,
    config: dict,
    query: str,
    inputs,
    files,
    from_source: str,
    end_user: EndUser | None,
    user,
    conversation_id,
    parent_message_id,
    task_id: uuid.UUID,
    conversation_name: str | None = None,
) -> Turn:
    if app.mode not in RUNNABLE_MODES:
        raise AppUnavailable(f"Apps of type {app.mode} cannot run here yet.")
    query = query if isinstance(query, str) else ""
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInput(f"query can be at most {MAX_QUERY_CHARS} characters long.")
    chat = app.mode == AppMode.CHAT
    if chat and not query.strip():
        raise InvalidInput("query is required.")
    setup = model_setup(app=app, config=config)
    conversation = _conversation(app, conversation_id, end_user, user) if chat else None
    if conversation is not None:
        inputs = conversation.inputs  # a conversation keeps the inputs of its first turn
    else:
        inputs = inputs_clean(config=config, inputs=inputs)
    if not chat:
        query = query or str(inputs.get("query", ""))
    images = _images(app, config, files, setup)
    parent = _parent(conversation, parent_message_id)
    with transaction.atomic():
        if chat and conversation is None:
            conversation = Conversation.objects.create(
                workspace_id=app.workspace_id,
                app=app,
                end_user=end_user,
                user=user if end_user is None else None,
                from_source=from_source,
                name=conversation_name or conversation_name_from_query(query),
                inputs=inputs,
            )
        message = Message.objects.create(
            workspace_id=app.workspace_id,
            app=app,
            conversation=conversation,
            parent_message=parent,
            end_user=end_user,
            user=user,
            from_source=from_source,
            task_id=task_id,
            query=query,
            inputs=inputs,
            files=_stored_files(files),
            status=MessageStatus.RUNNING,
            model_provider=setup.provider,
            model_name=setup.name,
        )
    history = _history(conversation, parent) if chat else []
    return Turn(app, config, setup, message, conversation, query, inputs, images, history)


def _conversation(app: App, conversation_id, end_user, user) -> Conversation | None:
    if not conversation_id:
        return None
    rows = Conversation.objects.for_workspace(app.workspace_id).filter(app=app, end_user=end_user)
    if end_user is None:  # a studio preview: each member's conversations are their own
        rows = rows.filter(user=user)
    try:
        conversation = rows.filter(pk=conversation_id).first()
    except (ValueError, ValidationError):
        conversation = None
    if conversation is None:
        raise NotFound("Conversation Not Exists.")
    return conversation


def _parent(conversation: Conversation | None, parent_message_id) -> Message | None:
    if conversation is None:
        return None
    messages = Message.objects.for_workspace(conversation.workspace_id).filter(
        conversation=conversation
    )
    if str(parent_message_id or "") == NO_PARENT:
        return None
    if parent_message_id:
        try:
            parent = messages.filter(pk=parent_message_id).first()
        except (ValueError, ValidationError):
            parent = None
        if parent is None:
            raise NotFound("Message Not Exists.")
        return parent
    return messages.order_by("-created_at").first()  # the newest turn: go on from there


def _history(conversation: Conversation | None, parent: Message | None) -> list[tuple[str, str]]:
    """The (query, answer) turns of the branch leading to `parent`, so a regenerated
    answer's siblings are not part of it; the newest MAX_HISTORY_MESSAGES at most."""
    if conversation is None or parent is None:
        return []
    branch = selectors.message_branch(conversation=conversation, last=parent)
    return [(m.query, m.answer) for m in branch if m.answer][-MAX_HISTORY_MESSAGES:]


def _stored_files(files) -> list[dict]:
    return [
        {k: f.get(k) for k in ("type", "transfer_method", "url", "upload_file_id") if f.get(k)}
        for f in files or []
    ]


def _images(app: App, config: dict, files, setup: ModelSetup) -> list[ImagePart]:
    if not files:
        return []
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        raise InvalidInput("files must be a list of objects.")
    image_config = (config.get("file_upload") or {}).get("image") or {}
    if not image_config.get("enabled"):
        raise InvalidInput("This app does not accept files.")
    limit = int(image_config.get("number_limits") or 3)
    if len(files) > limit:
        raise InvalidInput(f"At most {limit} images can be sent with a message.")
    detail = image_config.get("detail") if image_config.get("detail") in ("low", "high") else "auto"
    images = []
    for item in files:
        if item.get("type", "image") != "image":
            raise InvalidInput("Only image files are supported.")
        method = item.get("transfer_method")
        if method == "remote_url":
            url = item.get("url") or item.get("remote_url") or ""
            if not url.startswith(("https://", "http://")):
                raise InvalidInput("files: a remote_url file needs an http(s) url.")
            images.append(ImagePart(url=url, detail=detail))
        elif method == "local_file":
            images.append(ImagePart(url=_data_url(app, item.get("upload_file_id")), detail=detail))
        else:
            raise InvalidInput("files: transfer_method must be remote_url or local_file.")
    return images if setup.vision else []  # a model without vision gets the text only


def _data_url(app: App, file_id) -> str:
    try:
        upload = UploadFile.objects.for_workspace(app.workspace_id).filter(pk=file_id).first()
    except (ValueError, ValidationError):
        upload = None
    if upload is None:
        raise NotFound("File not found.")
    with upload.file.open("rb") as handle:
        data = base64.b64encode(handle.read()).decode()
    return f"data:{upload.mime_type};base64,{data}"


def message_finish(message_id, **fields) -> None:
    """Write the finished turn once. Only a running row is finished: a second writer (a
    stop racing the end) changes nothing."""
    Message.objects.filter(pk=message_id, status=MessageStatus.RUNNING).update(**fields)
