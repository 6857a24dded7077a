"""Management API for apps under /api/ (workspace management key): list, create, read,
change and delete apps, import and export Dify DSL, app API keys, and the messages log.

Routes that take an app id read their JSON body only after the app is found, so another
workspace's id is "not found" whatever the body holds."""

from __future__ import annotations

import json
import uuid
from typing import Literal

import pydantic
from django.http import HttpResponse
from ninja import Field, Query, Router, Schema
from ninja.errors import ValidationError
from ninja.responses import Status
from pydantic import ConfigDict

from apps.chat import dsl, keys, selectors
from apps.chat.models import App, AppApiKey, AppMode, Message
from apps.chat.services import apps as app_services
from apps.core.errors import DomainError, NotFound

router = Router(tags=["apps"])

MAX_PAGE_SIZE = 100


class _Strict(Schema):
    """Bodies name only what the caller may set; anything else is a 400, not ignored."""

    model_config = ConfigDict(extra="forbid")


class AppCreateIn(_Strict):
    name: str = Field(min_length=1, max_length=100)
    mode: Literal["chat", "completion", "agent-chat", "advanced-chat", "workflow"]
    description: str = Field("", max_length=2000)
    icon: str = Field("", max_length=16)


class AppPatchIn(_Strict):
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=2000)
    icon: str | None = Field(None, min_length=1, max_length=16)
    icon_background: str | None = Field(None, pattern=r"^#[0-9A-Fa-f]{6}$")
    config: dict | None = None
    enable_site: bool | None = None
    site_requires_login: bool | None = None
    enable_api: bool | None = None
    rate_limit_per_minute: int | None = Field(None, ge=0, le=1_000_000)
    end_user_rate_limit_per_minute: int | None = Field(None, ge=0, le=1_000_000)
    max_active_requests: int | None = Field(None, ge=0, le=100_000)


class ApiKeyIn(_Strict):
    name: str = Field("", max_length=100)


class ImportIn(_Strict):
    yaml: str
    name: str | None = Field(None, min_length=1, max_length=100)


def _app_summary(app: App) -> dict:
    return {
        "id": str(app.id),
        "name": app.name,
        "mode": app.mode,
        "description": app.description,
        "icon": app.icon,
        "icon_background": app.icon_background,
        "model": {
            "provider": (app.config.get("model") or {}).get("provider", ""),
            "name": (app.config.get("model") or {}).get("name", ""),
        },
        "created_at": app.created_at.isoformat(),
        "updated_at": app.updated_at.isoformat(),
    }


def _app_detail(app: App) -> dict:
    return {
        **_app_summary(app),
        "config": app.config,
        "enable_site": app.enable_site,
        "site_requires_login": app.site_requires_login,
        "site_path": f"/{'chat' if app.mode == AppMode.CHAT else 'completion'}/{app.site_code}",
        "enable_api": app.enable_api,
        "rate_limit_per_minute": app.rate_limit_per_minute,
        "end_user_rate_limit_per_minute": app.end_user_rate_limit_per_minute,
        "max_active_requests": app.max_active_requests,
    }


def _page(items, *, page: int, limit: int) -> dict:
    total = items.count()
    start = (page - 1) * limit
    return {
        "rows": list(items[start : start + limit]),
        "page": page,
        "limit": limit,
        "total": total,
        "has_more": start + limit < total,
    }


def _payload(request, schema: type[Schema]):
    """The body (JSON, or a form) validated against `schema`, after the caller's app was
    found."""
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        data = request.POST.dict()
    else:
        try:
            data = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise DomainError("The body is not valid JSON.", code="invalid_param") from None
    if not isinstance(data, dict):
        raise DomainError("The body must be a JSON object.", code="invalid_param")
    try:
        return schema.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError(exc.errors(include_url=False, include_context=False)) from None


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _body_doc(schema: type[Schema]) -> dict:
    return {
        "requestBody": {
            "content": {"application/json": {"schema": schema.model_json_schema()}},
            "required": False,
        }
    }


# --- Apps -------------------------------------------------------------------------------


@router.get("/apps", response=dict)
def app_list(
    request,
    search: str = Query("", max_length=200),
    mode: Literal["", "chat", "completion", "agent-chat", "advanced-chat", "workflow"] = "",
    page: int = Query(1, ge=1, le=100_000),
    limit: int = Query(20, ge=1, le=MAX_PAGE_SIZE),
):
    """The workspace's apps, newest change first; `search` matches name and description."""
    found = _page(
        selectors.app_list(workspace=request.workspace, search=search, mode=mode),
        page=page,
        limit=limit,
    )
    found["data"] = [_app_summary(app) for app in found.pop("rows")]
    return found


@router.post("/apps", response={201: dict})
def app_create(request, payload: AppCreateIn):
    """A new chat or completion app with the default configuration."""
    app = app_services.app_create(
        actor=request.membership,
        name=payload.name,
        mode=payload.mode,
        description=payload.description,
        icon=payload.icon,
    )
    return Status(201, _app_detail(app))


@router.post(
    "/apps/import",
    response={201: dict},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-yaml": {"schema": {"type": "string"}},
                "application/json": {"schema": ImportIn.model_json_schema()},
            },
            "required": True,
        }
    },
)
def app_import(request):
    """Import a Dify DSL file (chat or completion app) as a new app. Send the YAML as the
    body, or JSON `{"yaml": "...", "name": "optional new name"}`. Answers the new app's
    id and the warnings about what could not be carried over."""
    length = int(request.headers.get("Content-Length") or 0)
    if length > dsl.MAX_DSL_BYTES:
        raise dsl.DslError(
            f"The file is larger than {dsl.MAX_DSL_BYTES // (1024 * 1024)} MB; a chat or "
            "completion app's export is a few kilobytes."
        )
    name = None
    if request.content_type == "application/json":
        body = _payload(request, ImportIn)
        text, name = body.yaml, body.name
    elif request.content_type == "multipart/form-data":
        upload = request.FILES.get("file")
        if upload is None:
            raise DomainError("Send the DSL file in the form field `file`.", code="invalid_param")
        text, name = upload.read(dsl.MAX_DSL_BYTES + 1), request.POST.get("name") or None
    else:
        text = request.body
    app, warnings = dsl.app_import(actor=request.membership, yaml_text=text, name=name)
    return Status(
        201, {"id": str(app.id), "name": app.name, "mode": app.mode, "warnings": warnings}
    )


@router.get("/apps/{app_id}", response=dict)
def app_detail(request, app_id: str):
    """One app with its whole configuration (Dify's app_model_config shape)."""
    return _app_detail(selectors.app_get(workspace=request.workspace, app_id=app_id))


@router.patch("/apps/{app_id}", response=dict, openapi_extra=_body_doc(AppPatchIn))
def app_patch(request, app_id: str):
    """Change the fields sent; others stay. The workspace, ids and the public link's code
    are the server's: a body naming them is refused."""
    app = selectors.app_get(workspace=request.workspace, app_id=app_id)
    changes = _payload(request, AppPatchIn).model_dump(exclude_unset=True)
    for field, value in changes.items():
        if value is None:
            message = f"{field} cannot be null: leave it out to keep it."
            raise DomainError(message, code="invalid_param")
    app = app_services.app_update(actor=request.membership, app=app, **changes)
    return _app_detail(app)


@router.delete("/apps/{app_id}", response={204: None})
def app_delete(request, app_id: str):
    """Delete the app with its conversations, messages, keys and files."""
    app = selectors.app_get(workspace=request.workspace, app_id=app_id)
    app_services.app_delete(actor=request.membership, app=app)
    return Status(204, None)


@router.get("/apps/{app_id}/export", response={200: str})
def app_export(request, app_id: str):
    """The app as a Dify DSL file (YAML); it carries no key or secret."""
    app = selectors.app_get(workspace=request.workspace, app_id=app_id)
    response = HttpResponse(dsl.app_export(app=app), content_type="application/x-yaml")
    safe_name = "".join(c for c in app.name if c.isalnum() or c in " -_").strip() or "app"
    response["Content-Disposition"] = f'attachment; filename="{safe_name}.yml"'
    return response


# --- App API keys -----------------------------------------------------------------------


def _key_out(key: AppApiKey) -> dict:
    return {
        "id": str(key.id),
        "name": key.name,
        "prefix": key.prefix,
        "created_at": key.created_at.isoformat(),
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
    }


@router.get("/apps/{app_id}/api-keys", response=list[dict])
def app_api_key_list(request, app_id: str):
    """The app's live Service API keys: their prefix only, never the key."""
    app = selectors.app_get(workspace=request.workspace, app_id=app_id)
    return [_key_out(key) for key in keys.app_api_keys(app=app).order_by("-created_at")]


@router.post("/apps/{app_id}/api-keys", response={201: dict}, openapi_extra=_body_doc(ApiKeyIn))
def app_api_key_create(request, app_id: str):
    """A new Service API key (`Authorization: Bearer app-…`), returned this once."""
    app = selectors.app_get(workspace=request.workspace, app_id=app_id)
    body = _payload(request, ApiKeyIn)
    key, raw = keys.app_api_key_create(actor=request.membership, app=app, name=body.name)
    return Status(201, {**_key_out(key), "key": raw})


@router.delete("/apps/{app_id}/api-keys/{key_id}", response={204: None})
def app_api_key_revoke(request, app_id: str, key_id: str):
    """Revoke a key; calls with it fail at once."""
    app = selectors.app_get(workspace=request.workspace, app_id=app_id)
    if not _is_uuid(key_id):
        raise NotFound("No such key for this app.")
    keys.app_api_key_revoke(actor=request.membership, app=app, key_id=key_id)
    return Status(204, None)


# --- Messages ---------------------------------------------------------------------------


def _message_out(message: Message) -> dict:
    feedback = {
        given.from_source: {"rating": given.rating, "content": given.content}
        for given in message.feedbacks.all()
    }
    return {
        "id": str(message.id),
        "conversation_id": str(message.conversation_id) if message.conversation_id else None,
        "from_source": message.from_source,
        "status": message.status,
        "query": message.query,
        "answer": message.answer,
        "inputs": message.inputs,
        "error": message.error,
        "model_provider": message.model_provider,
        "model_name": message.model_name,
        "message_tokens": message.message_tokens,
        "answer_tokens": message.answer_tokens,
        "total_tokens": message.message_tokens + message.answer_tokens,
        "total_price": str(message.total_price),
        "currency": message.currency,
        "latency": message.latency,
        "first_token_latency": message.first_token_latency,
        "feedback": feedback.get("user"),
        "admin_feedback": feedback.get("admin"),
        "created_at": message.created_at.isoformat(),
    }


@router.get("/apps/{app_id}/messages", response=dict)
def app_messages(
    request,
    app_id: str,
    page: int = Query(1, ge=1, le=100_000),
    limit: int = Query(20, ge=1, le=MAX_PAGE_SIZE),
):
    """The app's messages, newest first: query, answer, tokens, price, latency, time to
    first token and feedback (the end user's and the workspace's)."""
    app = selectors.app_get(workspace=request.workspace, app_id=app_id)
    found = _page(selectors.message_list(app=app), page=page, limit=limit)
    found["data"] = [_message_out(message) for message in found.pop("rows")]
    return found
