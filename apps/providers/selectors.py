"""Reads of a workspace's provider setup and usage. Secrets leave only masked, and only
for those allowed to manage providers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from asgiref.sync import async_to_sync
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.core.crypto import decrypt_json
from apps.providers import catalog
from apps.providers.credentials import for_display
from apps.providers.instance import build_adapter
from apps.providers.models import (
    CredentialSet,
    DefaultModel,
    ModelConfig,
    ProviderConfig,
    UsageRecord,
)
from apps.providers.resolution import CredentialChoice, ModelTarget, system_credentials
from apps.providers.runtime.types import RemoteModel
from apps.providers.schema import ProviderSpec


@dataclass
class ProviderStatus:
    spec: ProviderSpec
    configured: bool  # the workspace has provider credentials or custom models
    enabled: bool
    system: bool  # the operator's keys cover it
    custom_models: list[ModelConfig] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return (self.configured and self.enabled) or self.system


def provider_statuses(*, workspace) -> list[ProviderStatus]:
    configs = {c.provider: c for c in ProviderConfig.objects.for_workspace(workspace)}
    custom: dict[str, list[ModelConfig]] = {}
    for config in ModelConfig.objects.for_workspace(workspace).filter(is_custom=True):
        custom.setdefault(config.provider, []).append(config)
    system = system_credentials()
    statuses = []
    for spec in catalog.providers():
        config = configs.get(spec.provider)
        statuses.append(
            ProviderStatus(
                spec=spec,
                configured=bool(config or custom.get(spec.provider)),
                enabled=config.enabled if config else True,
                system=spec.provider in system,
                custom_models=custom.get(spec.provider, []),
            )
        )
    return statuses


def provider_status(*, workspace, provider: str) -> ProviderStatus:
    for status in provider_statuses(workspace=workspace):
        if status.spec.provider == provider:
            return status
    raise KeyError(provider)


def provider_credentials_masked(*, workspace, provider: str) -> dict | None:
    config = ProviderConfig.objects.for_workspace(workspace).filter(provider=provider).first()
    spec = catalog.provider(provider)
    if not config or not spec.provider_credential_schema:
        return None
    credentials = decrypt_json(workspace, config.encrypted_credentials)
    return for_display(spec.provider_credential_schema.credential_form_schemas, credentials)


def model_credentials_masked(workspace, spec: ProviderSpec, row: ModelRow) -> dict:
    """A custom model's own stored credentials, secrets masked: what its edit form shows."""
    config = ModelConfig.objects.for_workspace(workspace).filter(pk=row.config_id).first()
    if not config or not config.encrypted_credentials:
        return {}
    stored = decrypt_json(workspace, config.encrypted_credentials)
    return for_display(spec.credential_fields(for_model=True), stored)


@dataclass
class ModelRow:
    provider: str
    model: str
    model_type: str
    label: str
    custom: bool
    enabled: bool
    deprecated: bool = False
    context_size: int | None = None
    load_balancing: str = "off"
    credential_sets: list[CredentialSet] = field(default_factory=list)
    config_id: str | None = None


def model_rows(*, workspace, provider: str) -> list[ModelRow]:
    """Predefined models of the provider plus the workspace's custom ones, with settings."""
    spec = catalog.provider(provider)
    configs = {
        (c.model_type, c.model): c
        for c in ModelConfig.objects.for_workspace(workspace)
        .filter(provider=provider)
        .prefetch_related("credential_sets")
    }
    rows = []
    for model_type in spec.supported_model_types:
        for model in spec.models_of(model_type):
            config = configs.pop((model_type, model.model), None)
            rows.append(_row(provider, model_type, model.model, model.label.text, config, model))
    for (model_type, name), config in sorted(configs.items()):
        if config.is_custom:
            rows.append(_row(provider, model_type, name, name, config, None))
    return rows


def _row(provider, model_type, name, label, config, model) -> ModelRow:
    props = model.model_properties if model else {}
    return ModelRow(
        provider=provider,
        model=name,
        model_type=model_type,
        label=label,
        custom=bool(config and config.is_custom),
        enabled=config.enabled if config else True,
        deprecated=bool(model and model.deprecated),
        context_size=props.get("context_size"),
        load_balancing=config.load_balancing if config else "off",
        credential_sets=list(config.credential_sets.all()) if config else [],
        config_id=str(config.pk) if config else None,
    )


def usable_models(*, workspace, model_type: str | None = None) -> list[ModelRow]:
    """Models a call can use right now: provider set up (or operator keys), model on."""
    rows = []
    for status in provider_statuses(workspace=workspace):
        if not (status.usable or status.custom_models):
            continue
        for row in model_rows(workspace=workspace, provider=status.spec.provider):
            if model_type and row.model_type != model_type:
                continue
            if not row.enabled or row.deprecated:
                continue
            if row.custom or status.usable:
                rows.append(row)
    return rows


def default_models(*, workspace) -> dict[str, DefaultModel]:
    return {d.model_type: d for d in DefaultModel.objects.for_workspace(workspace)}


def usage_by_day(*, workspace, days: int = 30, group: str = "model") -> list[dict]:
    """Tokens and cost per day, grouped by model (provider/model) or by app."""
    since = timezone.now() - timedelta(days=days)
    keys = ["provider", "model"] if group == "model" else ["app_id"]
    return list(
        UsageRecord.objects.for_workspace(workspace)
        .filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day", *keys)
        .annotate(
            calls=Count("id"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            cost=Sum("price"),
        )
        .order_by("day", *keys)
    )


def usage_records(*, workspace, days: int = 30):
    since = timezone.now() - timedelta(days=days)
    return (
        UsageRecord.objects.for_workspace(workspace)
        .filter(created_at__gte=since)
        .select_related("user")
        .order_by("-created_at")
    )


def remote_models(*, workspace, provider: str) -> list[RemoteModel]:
    """What the provider's own server lists (fetch-from-remote), with the workspace's
    provider credentials; an empty list when the provider cannot list or is not set up."""
    spec = catalog.provider(provider)
    config = (
        ProviderConfig.objects.for_workspace(workspace).filter(provider=provider, enabled=True)
    ).first()
    if "fetch-from-remote" not in spec.configurate_methods or config is None:
        return []
    choice = CredentialChoice(
        key=f"provider:{config.pk}",
        name="provider",
        credentials=decrypt_json(workspace, config.encrypted_credentials),
    )
    target = ModelTarget(
        workspace_id=workspace.pk,
        provider=spec,
        model_type="llm",
        model="",
        spec=None,
        strategy="off",
        choices=(choice,),
    )

    async def fetch() -> list[RemoteModel]:
        return await build_adapter(target, choice).list_models()

    return async_to_sync(fetch)()
