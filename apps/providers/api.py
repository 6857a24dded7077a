"""Management API for model providers (/api/...). Secrets are write-only: responses
carry masks at most."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from ninja import Field, Query, Router, Schema
from ninja.responses import Status

from apps.core.errors import NotFound
from apps.providers import catalog, selectors, services
from apps.tenants.models import ApiKeyScope
from apps.tenants.services import api_key_create

router = Router(tags=["model providers"])

ModelType = Literal["llm", "text-embedding", "rerank", "speech2text", "tts", "moderation"]


def _status_out(status: selectors.ProviderStatus) -> dict:
    spec = status.spec
    return {
        "provider": spec.provider,
        "label": spec.label.text,
        "supported_model_types": spec.supported_model_types,
        "configurate_methods": spec.configurate_methods,
        "configured": status.configured,
        "enabled": status.enabled,
        "system_credentials": status.system,
    }


def _status(request, provider: str) -> selectors.ProviderStatus:
    try:
        return selectors.provider_status(workspace=request.workspace, provider=provider)
    except KeyError as exc:
        raise NotFound(f"Unknown provider {provider!r}.") from exc


@router.get("/providers", response=list[dict])
def provider_list(request):
    """Every provider in the catalog and whether this workspace has set it up."""
    return [_status_out(s) for s in selectors.provider_statuses(workspace=request.workspace)]


@router.get("/providers/{provider}", response=dict)
def provider_detail(request, provider: str):
    """One provider with its credential form schemas and masked credentials."""
    status = _status(request, provider)
    spec = status.spec
    return {
        **_status_out(status),
        "description": spec.description.text if spec.description else "",
        "provider_credential_schema": (
            spec.provider_credential_schema.model_dump(mode="json")
            if spec.provider_credential_schema
            else None
        ),
        "model_credential_schema": (
            spec.model_credential_schema.model_dump(mode="json")
            if spec.model_credential_schema
            else None
        ),
        "credentials": selectors.provider_credentials_masked(
            workspace=request.workspace, provider=provider
        ),
    }


class CredentialsIn(Schema):
    credentials: dict[str, str | bool | int | float | None]


@router.put("/providers/{provider}/credentials", response=dict)
def provider_credentials_put(request, provider: str, payload: CredentialsIn):
    """Save provider credentials after a real call proves them (400 with the provider's
    message if it refuses). Send a secret's mask or `[__HIDDEN__]` to keep it."""
    _status(request, provider)
    services.provider_credentials_save(
        actor=request.membership, provider=provider, credentials=payload.credentials
    )
    return _status_out(_status(request, provider))


@router.delete("/providers/{provider}/credentials", response={204: None})
def provider_credentials_delete(request, provider: str):
    _status(request, provider)
    services.provider_credentials_delete(actor=request.membership, provider=provider)
    return Status(204, None)


class ModelOut(Schema):
    model: str
    model_type: str
    label: str
    custom: bool
    enabled: bool
    deprecated: bool
    context_size: int | None
    load_balancing: str
    credential_sets: list[dict]


@router.get("/providers/{provider}/models", response=list[ModelOut])
def provider_models(request, provider: str):
    _status(request, provider)
    rows = selectors.model_rows(workspace=request.workspace, provider=provider)
    return [
        {
            **row.__dict__,
            "credential_sets": [
                {"id": str(s.pk), "name": s.name, "enabled": s.enabled} for s in row.credential_sets
            ],
        }
        for row in rows
    ]


@router.get("/providers/{provider}/remote-models", response=list[dict])
def provider_remote_models(request, provider: str):
    """Models the provider's server lists itself (Ollama's tags, an OpenAI-style
    /models), for providers that fetch from remote; any of them can be called by name."""
    _status(request, provider)
    return [
        {"model": m.model, "model_type": m.model_type, "context_size": m.context_size}
        for m in selectors.remote_models(workspace=request.workspace, provider=provider)
    ]


class CustomModelIn(Schema):
    model: str = Field(min_length=1, max_length=255)
    model_type: ModelType
    credentials: dict[str, str | bool | int | float | None] = {}


@router.post("/providers/{provider}/models", response={201: dict})
def provider_model_create(request, provider: str, payload: CustomModelIn):
    """Add a customizable model with its own credentials (validated with a real call)."""
    _status(request, provider)
    config = services.custom_model_save(
        actor=request.membership,
        provider=provider,
        model_type=payload.model_type,
        model=payload.model,
        credentials=payload.credentials,
    )
    return Status(201, {"model": config.model, "model_type": config.model_type})


class ModelSettingsIn(Schema):
    model: str = Field(min_length=1, max_length=255)
    model_type: ModelType
    enabled: bool | None = None
    load_balancing: Literal["off", "round_robin", "least_busy"] | None = None


@router.patch("/providers/{provider}/models", response=dict)
def provider_model_update(request, provider: str, payload: ModelSettingsIn):
    """Switch a model on or off, or set how its credential sets take turns."""
    _status(request, provider)
    config = services.model_settings_update(
        actor=request.membership,
        provider=provider,
        model_type=payload.model_type,
        model=payload.model,
        enabled=payload.enabled,
        load_balancing=payload.load_balancing,
    )
    return {
        "model": config.model,
        "enabled": config.enabled,
        "load_balancing": config.load_balancing,
    }


class ModelKey(Schema):
    model: str
    model_type: ModelType


@router.delete("/providers/{provider}/models", response={204: None})
def provider_model_delete(request, provider: str, key: Query[ModelKey]):
    _status(request, provider)
    services.model_delete(
        actor=request.membership, provider=provider, model_type=key.model_type, model=key.model
    )
    return Status(204, None)


class CredentialSetIn(Schema):
    model: str = Field(min_length=1, max_length=255)
    model_type: ModelType
    name: str = Field(min_length=1, max_length=100)
    credentials: dict[str, str | bool | int | float | None] = {}


@router.post("/providers/{provider}/credential-sets", response={201: dict})
def credential_set_create(request, provider: str, payload: CredentialSetIn):
    """Another credential set for one model, for load balancing (empty: the model's own)."""
    _status(request, provider)
    created = services.credential_set_add(
        actor=request.membership,
        provider=provider,
        model_type=payload.model_type,
        model=payload.model,
        name=payload.name,
        credentials=payload.credentials,
    )
    return Status(201, {"id": str(created.pk), "name": created.name})


@router.delete("/credential-sets/{credential_set_id}", response={204: None})
def credential_set_delete(request, credential_set_id: UUID):
    services.credential_set_delete(actor=request.membership, credential_set_id=credential_set_id)
    return Status(204, None)


@router.get("/default-models", response=dict)
def default_models(request):
    return {
        model_type: {"provider": d.provider, "model": d.model}
        for model_type, d in selectors.default_models(workspace=request.workspace).items()
    }


class DefaultModelIn(Schema):
    provider: str
    model: str


@router.put("/default-models/{model_type}", response=dict)
def default_model_put(request, model_type: ModelType, payload: DefaultModelIn):
    provider = catalog.resolve_provider_id(payload.provider) or payload.provider
    default = services.default_model_set(
        actor=request.membership, model_type=model_type, provider=provider, model=payload.model
    )
    return {"model_type": default.model_type, "provider": default.provider, "model": default.model}


class GatewayKeyIn(Schema):
    name: str = Field(min_length=1, max_length=100)


@router.post("/gateway-keys", response={201: dict})
def gateway_key_create(request, payload: GatewayKeyIn):
    """A key for the OpenAI-compatible gateway (/v1/...); returned once, stored hashed."""
    key, raw = api_key_create(
        actor=request.membership, name=payload.name, scope=ApiKeyScope.GATEWAY
    )
    return Status(201, {"id": str(key.pk), "name": key.name, "key": raw})


@router.get("/usage", response=dict)
def usage(request, days: int = Query(30, ge=1, le=366), group: Literal["model", "app"] = "model"):
    """Calls, tokens and cost per day by model or by app."""
    rows = selectors.usage_by_day(workspace=request.workspace, days=days, group=group)
    return {
        "days": days,
        "group": group,
        "rows": [{key: _as_text(key, value) for key, value in row.items()} for row in rows],
    }


def _as_text(key: str, value):
    """Dates, ids and decimals go out as strings (decimals keep their exact value)."""
    return str(value) if key in ("day", "app_id", "cost") and value is not None else value
