"""Which credentials serve a call: custom model credentials → provider credentials →
the operator's system credentials (under a hosted quota). Resolved pools are cached in
the process and dropped whenever the workspace's provider settings change."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache

from apps.core.crypto import decrypt_json
from apps.core.errors import DomainError, NotFound
from apps.providers import catalog
from apps.providers.models import LoadBalancing, ModelConfig, ProviderConfig
from apps.providers.schema import ModelSpec, ProviderSpec


class ModelNotConfigured(DomainError):
    code = "model_not_configured"


@dataclass(frozen=True)
class CredentialChoice:
    key: str  # stable id for cooldowns and in-flight counts
    name: str  # shown in usage records
    credentials: dict = field(hash=False, compare=False)
    hosted: bool = False  # the operator's system credentials


@dataclass(frozen=True)
class ModelTarget:
    workspace_id: uuid.UUID
    provider: ProviderSpec
    model_type: str
    model: str
    spec: ModelSpec | None  # None for custom and remote-listed models
    strategy: str
    choices: tuple[CredentialChoice, ...]


def _version_key(workspace_id) -> str:
    return f"providers:v:{workspace_id}"


def invalidate(workspace_id) -> None:
    """Every process drops its cached pools for this workspace on its next call."""
    cache.set(_version_key(workspace_id), uuid.uuid4().hex, timeout=None)


_resolved: dict[tuple, tuple[str, ModelTarget]] = {}


def resolve(*, workspace, provider: str, model_type: str, model: str) -> ModelTarget:
    workspace_id = getattr(workspace, "pk", workspace)
    version = cache.get(_version_key(workspace_id))
    if version is None:
        invalidate(workspace_id)
        version = cache.get(_version_key(workspace_id))
    key = (workspace_id, provider, model_type, model)
    hit = _resolved.get(key)
    if hit and hit[0] == version:
        return hit[1]
    target = _resolve_uncached(workspace_id, provider, model_type, model)
    _resolved[key] = (version, target)
    return target


def resolved_already(*, workspace, provider: str, model_type: str, model: str):
    """The cached target if this process resolved it since the last change, else None.
    Touches the cache only, never the database, so async code may call it in-loop."""
    workspace_id = getattr(workspace, "pk", workspace)
    hit = _resolved.get((workspace_id, provider, model_type, model))
    if hit and hit[0] == cache.get(_version_key(workspace_id)):
        return hit[1]
    return None


def _resolve_uncached(workspace_id, provider_id: str, model_type: str, model: str) -> ModelTarget:
    try:
        spec = catalog.provider(provider_id)
    except KeyError as exc:
        raise NotFound(f"Unknown provider {provider_id!r}.") from exc
    if model_type not in spec.supported_model_types:
        raise NotFound(f"{spec.label.text} has no {model_type} models.")
    model_config = ModelConfig.objects.filter(
        workspace_id=workspace_id, provider=provider_id, model_type=model_type, model=model
    ).first()
    if model_config and not model_config.enabled:
        raise ModelNotConfigured(f"{provider_id}/{model} is switched off in this workspace.")
    model_spec = spec.model(model_type, model)
    provider_config = ProviderConfig.objects.filter(
        workspace_id=workspace_id, provider=provider_id, enabled=True
    ).first()
    known = model_spec or (model_config and model_config.is_custom)
    if not known and "fetch-from-remote" not in spec.configurate_methods:
        raise NotFound(f"{spec.label.text} has no model {model!r}.")

    base = _base_choice(workspace_id, spec, model_config, provider_config)
    choices: list[CredentialChoice] = [base]
    strategy = LoadBalancing.OFF
    if model_config and model_config.load_balancing != LoadBalancing.OFF:
        sets = [s for s in model_config.credential_sets.all() if s.enabled]
        if sets:
            strategy = model_config.load_balancing
            choices = [
                CredentialChoice(
                    key=f"set:{s.pk}",
                    name=s.name,
                    credentials=(
                        decrypt_json(workspace_id, s.encrypted_credentials)
                        if s.encrypted_credentials
                        else base.credentials
                    ),
                )
                for s in sets
            ]
    return ModelTarget(
        workspace_id=workspace_id,
        provider=spec,
        model_type=model_type,
        model=model,
        spec=model_spec,
        strategy=strategy,
        choices=tuple(choices),
    )


def _base_choice(workspace_id, spec, model_config, provider_config) -> CredentialChoice:
    if model_config and model_config.encrypted_credentials:
        return CredentialChoice(
            key=f"model:{model_config.pk}",
            name="model",
            credentials=decrypt_json(workspace_id, model_config.encrypted_credentials),
        )
    if provider_config:
        return CredentialChoice(
            key=f"provider:{provider_config.pk}",
            name="provider",
            credentials=decrypt_json(workspace_id, provider_config.encrypted_credentials),
        )
    system = system_credentials().get(spec.provider)
    if system:
        return CredentialChoice(
            key=f"system:{spec.provider}", name="system", credentials=system, hosted=True
        )
    raise ModelNotConfigured(
        f"{spec.label.text} is not set up in this workspace: an admin can add its credentials "
        "under Settings → Model providers."
    )


def system_credentials() -> dict[str, dict]:
    """Operator-provided keys: ORRERY_SYSTEM_CREDENTIALS={"openai": {"openai_api_key": "…"}},
    keyed by provider id, with the variable names of that provider's credential form."""
    raw = settings.ORRERY_SYSTEM_CREDENTIALS
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise DomainError("ORRERY_SYSTEM_CREDENTIALS is not valid JSON.") from exc
    return data if isinstance(data, dict) else {}
