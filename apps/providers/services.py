"""Writes to a workspace's provider setup. Each checks the actor's role, validates
credentials with a real call, encrypts them, and drops cached resolutions."""

from __future__ import annotations

from django.db import transaction

from apps.core.crypto import decrypt_json, encrypt_json
from apps.core.errors import DomainError, NotFound, PermissionDenied
from apps.providers import catalog
from apps.providers.credentials import clean_credentials
from apps.providers.models import (
    MODEL_TYPES,
    CredentialSet,
    DefaultModel,
    LoadBalancing,
    ModelConfig,
    ProviderConfig,
)
from apps.providers.resolution import invalidate, resolve
from apps.providers.schema import ProviderSpec
from apps.providers.validation import validate_credentials
from apps.tenants.models import Membership
from apps.tenants.permissions import can

MODEL_TYPE_VALUES = [value for value, _ in MODEL_TYPES]


def _require_admin(actor: Membership) -> None:
    if not can(actor.role, "providers.manage"):
        raise PermissionDenied("Only owners and admins manage model providers.")


def _spec(provider: str) -> ProviderSpec:
    try:
        return catalog.provider(provider)
    except KeyError as exc:
        raise NotFound(f"Unknown provider {provider!r}.") from exc


def _model_type(spec: ProviderSpec, model_type: str) -> str:
    if model_type not in spec.supported_model_types:
        raise DomainError(f"{spec.label.text} has no {model_type!r} models.")
    return model_type


# --- Provider credentials ----------------------------------------------------------


def provider_credentials_save(
    *, actor: Membership, provider: str, credentials: dict, validate: bool = True
) -> ProviderConfig:
    _require_admin(actor)
    spec = _spec(provider)
    if spec.provider_credential_schema is None:
        raise DomainError(f"{spec.label.text} takes credentials per model, not per provider.")
    workspace = actor.workspace
    existing = ProviderConfig.objects.for_workspace(workspace).filter(provider=provider).first()
    stored = decrypt_json(workspace, existing.encrypted_credentials) if existing else None
    cleaned = clean_credentials(
        spec.provider_credential_schema.credential_form_schemas, credentials, stored
    )
    if validate:
        validate_credentials(spec, cleaned)
    config, _ = ProviderConfig.objects.update_or_create(
        workspace=workspace,
        provider=provider,
        defaults={"encrypted_credentials": encrypt_json(workspace, cleaned), "enabled": True},
    )
    transaction.on_commit(lambda: invalidate(workspace.pk))
    return config


def provider_credentials_delete(*, actor: Membership, provider: str) -> None:
    _require_admin(actor)
    ProviderConfig.objects.for_workspace(actor.workspace).filter(provider=provider).delete()
    invalidate(actor.workspace.pk)


def provider_set_enabled(*, actor: Membership, provider: str, enabled: bool) -> None:
    _require_admin(actor)
    updated = (
        ProviderConfig.objects.for_workspace(actor.workspace)
        .filter(provider=provider)
        .update(enabled=enabled)
    )
    if not updated:
        raise NotFound("Set up the provider's credentials first.")
    invalidate(actor.workspace.pk)


# --- Models ------------------------------------------------------------------------


def custom_model_save(
    *,
    actor: Membership,
    provider: str,
    model_type: str,
    model: str,
    credentials: dict,
    validate: bool = True,
) -> ModelConfig:
    """Add or update a customizable model with credentials of its own."""
    _require_admin(actor)
    spec = _spec(provider)
    model_type = _model_type(spec, model_type)
    model = model.strip()
    if not model or len(model) > 255:
        raise DomainError("Give the model's name as the provider knows it.")
    if "customizable-model" not in spec.configurate_methods or not spec.model_credential_schema:
        raise DomainError(f"{spec.label.text} does not take custom models.")
    workspace = actor.workspace
    existing = (
        ModelConfig.objects.for_workspace(workspace)
        .filter(provider=provider, model_type=model_type, model=model)
        .first()
    )
    stored = (
        decrypt_json(workspace, existing.encrypted_credentials)
        if existing and existing.encrypted_credentials
        else None
    )
    cleaned = clean_credentials(
        spec.model_credential_schema.credential_form_schemas,
        credentials,
        stored,
        model_type=model_type,
    )
    if validate:
        validate_credentials(spec, cleaned, model_type=model_type, model=model)
    config, _ = ModelConfig.objects.update_or_create(
        workspace=workspace,
        provider=provider,
        model_type=model_type,
        model=model,
        defaults={"is_custom": True, "encrypted_credentials": encrypt_json(workspace, cleaned)},
    )
    transaction.on_commit(lambda: invalidate(workspace.pk))
    return config


def model_settings_update(
    *,
    actor: Membership,
    provider: str,
    model_type: str,
    model: str,
    enabled: bool | None = None,
    load_balancing: str | None = None,
) -> ModelConfig:
    """Switch a model on or off, or choose how its credential sets take turns."""
    _require_admin(actor)
    spec = _spec(provider)
    model_type = _model_type(spec, model_type)
    if load_balancing is not None and load_balancing not in LoadBalancing.values:
        raise DomainError(f"load_balancing must be one of {', '.join(LoadBalancing.values)}.")
    config, _ = ModelConfig.objects.get_or_create(
        workspace=actor.workspace, provider=provider, model_type=model_type, model=model
    )
    fields = []
    if enabled is not None:
        config.enabled = enabled
        fields.append("enabled")
    if load_balancing is not None:
        config.load_balancing = load_balancing
        fields.append("load_balancing")
    if fields:
        config.save(update_fields=[*fields, "updated_at"])
    invalidate(actor.workspace.pk)
    return config


def model_delete(*, actor: Membership, provider: str, model_type: str, model: str) -> None:
    _require_admin(actor)
    deleted, _ = (
        ModelConfig.objects.for_workspace(actor.workspace)
        .filter(provider=provider, model_type=model_type, model=model)
        .delete()
    )
    if not deleted:
        raise NotFound("No such model settings in this workspace.")
    invalidate(actor.workspace.pk)


# --- Load-balancing credential sets -------------------------------------------------


def credential_set_add(
    *,
    actor: Membership,
    provider: str,
    model_type: str,
    model: str,
    name: str,
    credentials: dict,
    validate: bool = True,
) -> CredentialSet:
    """Another credential set for one model; empty credentials reuse the model's own."""
    _require_admin(actor)
    spec = _spec(provider)
    model_type = _model_type(spec, model_type)
    name, model = name.strip(), model.strip()
    if not name or len(name) > 100:
        raise DomainError("Name the credential set (100 characters at most).")
    if not model or len(model) > 255:
        raise DomainError("Give the model's name as the provider knows it.")
    schema = spec.model_credential_schema or spec.provider_credential_schema
    cleaned = clean_credentials(schema.credential_form_schemas, credentials) if credentials else {}
    if cleaned and validate:
        validate_credentials(spec, cleaned, model_type=model_type, model=model)
    workspace = actor.workspace
    with transaction.atomic():
        config, _ = ModelConfig.objects.get_or_create(
            workspace=workspace, provider=provider, model_type=model_type, model=model
        )
        if CredentialSet.objects.filter(model_config=config, name=name).exists():
            raise DomainError(f"A credential set named {name!r} exists already.")
        created = CredentialSet.objects.create(
            workspace=workspace,
            model_config=config,
            name=name,
            encrypted_credentials=encrypt_json(workspace, cleaned) if cleaned else "",
        )
        if config.load_balancing == LoadBalancing.OFF:
            config.load_balancing = LoadBalancing.ROUND_ROBIN
            config.save(update_fields=["load_balancing", "updated_at"])
    invalidate(workspace.pk)
    return created


def credential_set_delete(*, actor: Membership, credential_set_id) -> None:
    _require_admin(actor)
    deleted, _ = (
        CredentialSet.objects.for_workspace(actor.workspace).filter(pk=credential_set_id).delete()
    )
    if not deleted:
        raise NotFound("No such credential set in this workspace.")
    invalidate(actor.workspace.pk)


# --- Default models ----------------------------------------------------------------


def default_model_set(
    *, actor: Membership, model_type: str, provider: str, model: str
) -> DefaultModel:
    _require_admin(actor)
    if model_type not in MODEL_TYPE_VALUES:
        raise DomainError(f"model_type must be one of {', '.join(MODEL_TYPE_VALUES)}.")
    resolve(workspace=actor.workspace, provider=provider, model_type=model_type, model=model)
    default, _ = DefaultModel.objects.update_or_create(
        workspace=actor.workspace,
        model_type=model_type,
        defaults={"provider": provider, "model": model},
    )
    return default
