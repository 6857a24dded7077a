"""Checking credentials with a real, minimal call before they are saved."""

from __future__ import annotations

import uuid

import httpx
from asgiref.sync import async_to_sync

from apps.core.crypto import mask_secret
from apps.providers.credentials import CredentialsInvalid
from apps.providers.instance import build_adapter
from apps.providers.models import LoadBalancing
from apps.providers.resolution import CredentialChoice, ModelTarget
from apps.providers.runtime import errors
from apps.providers.runtime.types import LLMRequest, Message
from apps.providers.schema import ProviderSpec

PING = "ping"


def validate_credentials(
    spec: ProviderSpec, credentials: dict, *, model_type: str | None = None, model: str = ""
) -> None:
    """Raise CredentialsInvalid with the provider's own words if it refuses them."""
    try:
        async_to_sync(_probe)(spec, credentials, model_type, model)
    except errors.InvokeError as exc:
        reason = _without_secrets(exc.provider_message or exc.message, spec, credentials)
        raise CredentialsInvalid(f"{spec.label.text} refused these credentials: {reason}") from exc
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise CredentialsInvalid(f"The server address is not a valid http(s) URL: {exc}") from exc


def _without_secrets(message: str, spec: ProviderSpec, credentials: dict) -> str:
    """Some errors quote the request (a header with the key in it): never echo a secret."""
    for name in spec.secret_fields() | spec.secret_fields(for_model=True):
        secret = str(credentials.get(name) or "")
        if len(secret) >= 4:
            message = message.replace(secret, mask_secret(secret))
    return message


async def _probe(spec: ProviderSpec, credentials: dict, model_type: str | None, model: str):
    model_type, model = _probe_model(spec, model_type, model)
    target = ModelTarget(
        workspace_id=uuid.UUID(int=0),
        provider=spec,
        model_type=model_type or "llm",
        model=model,
        spec=None,
        strategy=LoadBalancing.OFF,
        choices=(),
    )
    adapter = build_adapter(
        target, CredentialChoice(key="probe", name="probe", credentials=credentials)
    )
    if model_type is None:
        await adapter.list_models()
    elif model_type == "llm":
        request = LLMRequest(
            model=model, messages=[Message("user", PING)], parameters={"max_tokens": 5}
        )
        await adapter.invoke_llm(request)
    elif model_type == "text-embedding":
        await adapter.embed(model, [PING])
    elif model_type == "rerank":
        await adapter.rerank(model, PING, [PING])
    elif model_type == "moderation":
        await adapter.moderate(model, PING)
    else:  # speech models: listing models is the cheapest proof the key works
        await adapter.list_models()


def _probe_model(spec: ProviderSpec, model_type: str | None, model: str) -> tuple[str | None, str]:
    """A custom model is probed itself; provider credentials by listing models when the
    protocol can, else with the provider's first predefined model."""
    if model:
        return model_type, model
    if spec.runtime.models_endpoint:
        return None, ""
    for kind in ("llm", "text-embedding", "rerank"):
        candidates = [m for m in spec.models_of(kind) if not m.deprecated]
        if candidates:
            return kind, candidates[0].model
    return None, ""
