"""An app's fallback models: `model.fallbacks` in its configuration, an ordered list of
`{"provider": ..., "name": ...}` language models. When the app's model fails before
writing anything (provider down or overloaded, rate limit, refused credentials), the next
one answers, with the same prompt and completion parameters (apps.providers.instance
moves along the chain; a bad request is not retried elsewhere).

A chain being saved must hold at most MAX_FALLBACKS models, each one the workspace can
call now (the rule of the main model's picker), none twice and none the main model
(fallbacks_check). A stored chain may still name a model that is gone since (switched
off, credentials removed, imported from elsewhere): ModelInstance passes over it rather
than failing on it."""

from __future__ import annotations

import logging

from apps.core.errors import DomainError
from apps.providers import selectors
from apps.providers.instance import ModelRef

logger = logging.getLogger(__name__)

MAX_FALLBACKS = 3


class FallbackError(DomainError):
    code = "invalid_param"
    status = 400


def _model_section(config) -> dict:
    model = config.get("model") if isinstance(config, dict) else None
    return model if isinstance(model, dict) else {}


def _ref(entry) -> ModelRef | None:
    if not isinstance(entry, dict):
        return None
    provider, name = entry.get("provider"), entry.get("name")
    if not (isinstance(provider, str) and provider and isinstance(name, str) and name):
        return None
    return ModelRef(provider, name)


def fallback_refs(config: dict) -> list[ModelRef]:
    """The chain as stored, in order; malformed entries left out."""
    entries = _model_section(config).get("fallbacks")
    refs = [_ref(entry) for entry in entries] if isinstance(entries, list) else []
    return [ref for ref in refs if ref is not None]


def model_label(ref: ModelRef) -> str:
    return f"{ref.provider}/{ref.model}"


def fallbacks_check(*, workspace, config: dict) -> None:
    """Raise FallbackError saying what is wrong with the configuration's chain, if anything."""
    model = _model_section(config)
    entries = model.get("fallbacks", [])
    if not isinstance(entries, list) or any(_ref(entry) is None for entry in entries):
        raise FallbackError(
            'model.fallbacks must be a list of {"provider": ..., "name": ...} objects.'
        )
    if len(entries) > MAX_FALLBACKS:
        raise FallbackError(f"An app can have at most {MAX_FALLBACKS} fallback models.")
    main = ModelRef(model.get("provider") or "", model.get("name") or "")
    usable = {
        ModelRef(row.provider, row.model)
        for row in selectors.usable_models(workspace=workspace, model_type="llm")
    }
    seen: set[ModelRef] = set()
    for ref in fallback_refs(config):
        if ref == main:
            raise FallbackError(
                f"{model_label(ref)} is the app's model already: a fallback must be another model."
            )
        if ref in seen:
            raise FallbackError(f"{model_label(ref)} is in the fallback list twice.")
        if ref not in usable:
            raise FallbackError(
                f"{model_label(ref)} is not a language model this workspace can use: set up its "
                "provider under Model providers, or choose another."
            )
        seen.add(ref)


def fallbacks_changed(before: dict, after: dict) -> bool:
    return _model_section(before).get("fallbacks") != _model_section(after).get("fallbacks")
