"""Knowledge bases: create, change, delete, and the dataset API keys that open the
Knowledge API. Every action checks the actor's role through the permission map and the
knowledge base's visibility; validation follows Dify's (a name of at most 40 characters,
unique in the workspace)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction

from apps.core.errors import Conflict, DomainError, PermissionDenied
from apps.datasets import selectors
from apps.datasets.models import Dataset, DatasetPermission, DocForm, IndexingTechnique
from apps.tenants.models import ApiKey, ApiKeyScope, Membership
from apps.tenants.permissions import can
from apps.tenants.services import api_key_create, api_key_revoke

NAME_MAX = 40
DESCRIPTION_MAX = 400
SEARCH_METHODS = ("semantic_search", "full_text_search", "hybrid_search", "keyword_search")
RERANKING_MODES = ("reranking_model", "weighted_score")
WEIGHT_TYPES = ("semantic_first", "keyword_first", "customized")
TOP_K_MAX = 10
# A workspace keeps at most this many live dataset keys, as Dify does per resource.
DATASET_KEYS_MAX = 10


def default_retrieval_model(*, indexing_technique: str) -> dict[str, Any]:
    """Dify's server default: semantic search, top 4, no threshold; economy knowledge
    bases have no embeddings, so they search full text."""
    return {
        "search_method": "semantic_search"
        if indexing_technique == IndexingTechnique.HIGH_QUALITY
        else "full_text_search",
        "reranking_enable": False,
        "reranking_mode": "reranking_model",
        "reranking_model": {"reranking_provider_name": "", "reranking_model_name": ""},
        "weights": None,
        "top_k": 4,
        "score_threshold_enabled": False,
        "score_threshold": 0.5,
    }


def default_process_rule() -> dict[str, Any]:
    return {"mode": "automatic", "rules": {}}


class Invalid(DomainError):
    """Bad input, with Dify's error code for it."""

    code = "invalid_param"


def _require(actor: Membership, action: str) -> None:
    if not can(actor.role, action):
        raise PermissionDenied("Your role in this workspace does not allow that.")


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise Invalid("A knowledge base needs a name.")
    if len(name) > NAME_MAX:
        raise Invalid(f"The name can be at most {NAME_MAX} characters.")
    if "\x00" in name:
        raise Invalid("The name contains a character that is not allowed.")
    return name


def _clean_description(description: str) -> str:
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise Invalid(f"The description can be at most {DESCRIPTION_MAX} characters.")
    return description.replace("\x00", "")


def _clean_choice(value: str, choices: Iterable[str], what: str) -> str:
    if value not in choices:
        raise Invalid(f"{what} must be one of: {', '.join(choices)}.")
    return value


def _clean_embedding_model(*, actor: Membership, provider: str, model: str) -> tuple[str, str]:
    """An explicit model must be one of the workspace's usable embedding models."""
    provider, model = (provider or "").strip(), (model or "").strip()
    if not provider and not model:
        return "", ""
    if not provider or not model:
        raise Invalid("Give both the embedding model and its provider.")
    usable = dict(selectors.embedding_model_choices(workspace=actor.workspace))
    if f"{provider}/{model}" not in usable:
        raise Invalid(f"The embedding model {provider}/{model} is not set up in this workspace.")
    return provider, model


def _require_embedding_available(*, actor: Membership, technique: str, model: str) -> None:
    if technique != IndexingTechnique.HIGH_QUALITY or model:
        return
    if selectors.default_embedding_model(workspace=actor.workspace) is None:
        raise Invalid(
            "High-quality indexing needs an embedding model: pick one, set a default "
            "embedding model under Settings → Model providers, or choose economy indexing."
        )


def clean_retrieval_model(value: Any, *, indexing_technique: str) -> dict[str, Any]:
    """Dify's retrieval_model, checked field by field; missing fields take the defaults."""
    merged = default_retrieval_model(indexing_technique=indexing_technique)
    if value in (None, {}):
        return merged
    if not isinstance(value, dict):
        raise Invalid("retrieval_model must be an object.")
    merged.update({k: v for k, v in value.items() if k in merged or k == "weights"})
    _clean_choice(merged["search_method"], SEARCH_METHODS, "retrieval_model.search_method")
    if indexing_technique == IndexingTechnique.ECONOMY and merged["search_method"] in (
        "semantic_search",
        "hybrid_search",
    ):
        raise Invalid("Economy knowledge bases have no embeddings: use full_text_search.")
    if merged.get("reranking_mode") is None:
        merged["reranking_mode"] = "reranking_model"
    _clean_choice(merged["reranking_mode"], RERANKING_MODES, "retrieval_model.reranking_mode")
    try:
        merged["top_k"] = int(merged["top_k"])
        merged["score_threshold"] = float(merged["score_threshold"] or 0)
    except (TypeError, ValueError) as exc:
        raise Invalid("retrieval_model.top_k and score_threshold must be numbers.") from exc
    if not 1 <= merged["top_k"] <= TOP_K_MAX:
        raise Invalid(f"top_k must be between 1 and {TOP_K_MAX}.")
    if not 0 <= merged["score_threshold"] <= 1:
        raise Invalid("score_threshold must be between 0 and 1.")
    merged["reranking_enable"] = bool(merged["reranking_enable"])
    merged["score_threshold_enabled"] = bool(merged["score_threshold_enabled"])
    reranking = merged.get("reranking_model") or {}
    if not isinstance(reranking, dict):
        raise Invalid("retrieval_model.reranking_model must be an object.")
    merged["reranking_model"] = {
        "reranking_provider_name": str(reranking.get("reranking_provider_name") or ""),
        "reranking_model_name": str(reranking.get("reranking_model_name") or ""),
    }
    if merged["reranking_enable"] and merged["reranking_mode"] == "reranking_model":
        if not merged["reranking_model"]["reranking_model_name"]:
            raise Invalid("Reranking is on but no rerank model is chosen.")
    weights = merged.get("weights")
    if weights is not None:
        merged["weights"] = _clean_weights(weights)
    return merged


def _clean_weights(weights: Any) -> dict[str, Any]:
    if not isinstance(weights, dict):
        raise Invalid("retrieval_model.weights must be an object.")
    vector = weights.get("vector_setting") or {}
    keyword = weights.get("keyword_setting") or {}
    if not isinstance(vector, dict) or not isinstance(keyword, dict):
        raise Invalid("retrieval_model.weights is malformed.")
    try:
        vector_weight = float(vector.get("vector_weight", 0.7))
        keyword_weight = float(keyword.get("keyword_weight", 0.3))
    except (TypeError, ValueError) as exc:
        raise Invalid("Weights must be numbers.") from exc
    if not (0 <= vector_weight <= 1 and 0 <= keyword_weight <= 1):
        raise Invalid("Weights must be between 0 and 1.")
    weight_type = weights.get("weight_type") or "customized"
    _clean_choice(weight_type, WEIGHT_TYPES, "retrieval_model.weights.weight_type")
    return {
        "weight_type": weight_type,
        "vector_setting": {
            "vector_weight": vector_weight,
            "embedding_provider_name": str(vector.get("embedding_provider_name") or ""),
            "embedding_model_name": str(vector.get("embedding_model_name") or ""),
        },
        "keyword_setting": {"keyword_weight": keyword_weight},
    }


def _members_of(actor: Membership, member_ids: Iterable) -> list:
    """Users of the workspace picked for partial_members; a foreign id is refused."""
    ids = {str(i) for i in member_ids if i}
    users = [
        m.user
        for m in selectors.dataset_member_choices(workspace=actor.workspace)
        if str(m.user_id) in ids or str(m.pk) in ids
    ]
    if len(users) < len(ids):
        raise Invalid("A chosen member is not in this workspace.")
    return users


def _save_unique(dataset: Dataset, update_fields: list[str] | None = None) -> None:
    try:
        with transaction.atomic():
            dataset.save(update_fields=update_fields)
    except IntegrityError as exc:
        raise Conflict(
            "A knowledge base with this name already exists. Choose another name.",
            code="dataset_name_duplicate",
        ) from exc


@transaction.atomic
def dataset_create(
    *,
    actor: Membership,
    name: str,
    description: str = "",
    permission: str = DatasetPermission.ONLY_ME,
    member_ids: Iterable = (),
    indexing_technique: str = IndexingTechnique.HIGH_QUALITY,
    embedding_model_provider: str = "",
    embedding_model: str = "",
    retrieval_model: dict[str, Any] | None = None,
    process_rule: dict[str, Any] | None = None,
    doc_form: str = DocForm.TEXT,
) -> Dataset:
    _require(actor, "knowledge.manage")
    name = _clean_name(name)
    _clean_choice(permission, DatasetPermission.values, "permission")
    _clean_choice(indexing_technique, IndexingTechnique.values, "indexing_technique")
    _clean_choice(doc_form, DocForm.values, "doc_form")
    provider, model = _clean_embedding_model(
        actor=actor, provider=embedding_model_provider, model=embedding_model
    )
    _require_embedding_available(actor=actor, technique=indexing_technique, model=model)
    if selectors.dataset_name_taken(workspace=actor.workspace, name=name):
        raise Conflict(
            "A knowledge base with this name already exists. Choose another name.",
            code="dataset_name_duplicate",
        )
    dataset = Dataset(
        workspace=actor.workspace,
        name=name,
        description=_clean_description(description),
        permission=permission,
        created_by_id=actor.user_id,
        indexing_technique=indexing_technique,
        embedding_model_provider=provider,
        embedding_model=model,
        retrieval_model=clean_retrieval_model(
            retrieval_model, indexing_technique=indexing_technique
        ),
        process_rule=process_rule or default_process_rule(),
        doc_form=doc_form,
    )
    _save_unique(dataset)
    if permission == DatasetPermission.PARTIAL_MEMBERS:
        dataset.members.set(_members_of(actor, member_ids))
    return dataset


_UNSET: Any = object()


@transaction.atomic
def dataset_update(
    *,
    actor: Membership,
    dataset: Dataset,
    name: str = _UNSET,
    description: str = _UNSET,
    permission: str = _UNSET,
    member_ids: Iterable = _UNSET,
    indexing_technique: str = _UNSET,
    embedding_model_provider: str = _UNSET,
    embedding_model: str = _UNSET,
    retrieval_model: dict[str, Any] | None = _UNSET,
    process_rule: dict[str, Any] = _UNSET,
) -> Dataset:
    """Change what is given, leave the rest. The dataset was looked up for this actor, so
    it is one they may see; changing who else may see it is for its creator, owners and
    admins only (as in Dify)."""
    _require(actor, "knowledge.manage")
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk, workspace=actor.workspace)
    fields: list[str] = []
    if name is not _UNSET:
        dataset.name = _clean_name(name)
        if selectors.dataset_name_taken(
            workspace=actor.workspace, name=dataset.name, exclude_id=dataset.pk
        ):
            raise Conflict(
                "A knowledge base with this name already exists. Choose another name.",
                code="dataset_name_duplicate",
            )
        fields.append("name")
    if description is not _UNSET:
        dataset.description = _clean_description(description)
        fields.append("description")
    if permission is not _UNSET and permission != dataset.permission:
        _clean_choice(permission, DatasetPermission.values, "permission")
        if dataset.created_by_id != actor.user_id and actor.role not in ("owner", "admin"):
            raise PermissionDenied(
                "Only the creator of this knowledge base, owners and admins can change who sees it."
            )
        dataset.permission = permission
        fields.append("permission")
    if indexing_technique is not _UNSET and indexing_technique != dataset.indexing_technique:
        _clean_choice(indexing_technique, IndexingTechnique.values, "indexing_technique")
        dataset.indexing_technique = indexing_technique
        fields.append("indexing_technique")
    if embedding_model is not _UNSET or embedding_model_provider is not _UNSET:
        provider, model = _clean_embedding_model(
            actor=actor,
            provider=dataset.embedding_model_provider
            if embedding_model_provider is _UNSET
            else embedding_model_provider,
            model=dataset.embedding_model if embedding_model is _UNSET else embedding_model,
        )
        dataset.embedding_model_provider, dataset.embedding_model = provider, model
        fields += ["embedding_model_provider", "embedding_model"]
    if "indexing_technique" in fields or "embedding_model" in fields:
        _require_embedding_available(
            actor=actor, technique=dataset.indexing_technique, model=dataset.embedding_model
        )
    if retrieval_model is not _UNSET or "indexing_technique" in fields:
        current = dataset.retrieval_model if retrieval_model is _UNSET else retrieval_model
        if "indexing_technique" in fields and dataset.indexing_technique == "economy":
            if (current or {}).get("search_method") in ("semantic_search", "hybrid_search"):
                current = {**current, "search_method": "full_text_search"}
        dataset.retrieval_model = clean_retrieval_model(
            current, indexing_technique=dataset.indexing_technique
        )
        fields.append("retrieval_model")
    if process_rule is not _UNSET:
        if not isinstance(process_rule, dict):
            raise Invalid("process_rule must be an object.")
        dataset.process_rule = process_rule
        fields.append("process_rule")
    if fields:
        _save_unique(dataset, update_fields=[*fields, "updated_at"])
    if dataset.permission == DatasetPermission.PARTIAL_MEMBERS and member_ids is not _UNSET:
        dataset.members.set(_members_of(actor, member_ids))
    return dataset


def dataset_delete(*, actor: Membership, dataset: Dataset, confirm_name: str | None = None) -> None:
    """Delete a knowledge base with its documents and chunks. Pages ask the user to type
    the name first (confirm_name); the API, like Dify's, deletes on request."""
    _require(actor, "knowledge.manage")
    if confirm_name is not None and confirm_name.strip() != dataset.name:
        raise DomainError("Type the knowledge base's name exactly to confirm.")
    Dataset.objects.for_workspace(actor.workspace).filter(pk=dataset.pk).delete()


# --- Dataset API keys ----------------------------------------------------------------------


def dataset_api_key_create(*, actor: Membership, name: str) -> tuple[ApiKey, str]:
    """A key for the Knowledge API (/v1/datasets…); the raw key is returned once."""
    live = selectors.dataset_api_key_list(workspace=actor.workspace).filter(revoked_at__isnull=True)
    if live.count() >= DATASET_KEYS_MAX:
        raise DomainError(
            f"A workspace can have at most {DATASET_KEYS_MAX} knowledge API keys; revoke one "
            "first.",
            code="max_keys_exceeded",
        )
    return api_key_create(actor=actor, name=name, scope=ApiKeyScope.DATASET)


def dataset_api_key_revoke(*, actor: Membership, api_key_id) -> None:
    selectors.dataset_api_key_get(workspace=actor.workspace, api_key_id=api_key_id)
    api_key_revoke(actor=actor, api_key_id=api_key_id)
