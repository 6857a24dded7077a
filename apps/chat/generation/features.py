"""The app features that sit around the model call: moderation of input and output,
annotation reply, knowledge context, and suggested follow-up questions."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

from django.db.models import F
from pgvector.django import CosineDistance

from apps.chat.models import Annotation
from apps.core.offload import offload
from apps.datasets.app_retrieval import retrieve_for_app
from apps.providers.instance import ModelInstance, ModelRef
from apps.providers.runtime.errors import InvokeError
from apps.providers.runtime.types import LLMRequest
from apps.providers.runtime.types import Message as LLMMessage

logger = logging.getLogger(__name__)

DEFAULT_PRESET = "Sorry, I can't help with that."
MAX_KEYWORDS = 100


# --- Moderation -----------------------------------------------------------------------


@dataclass(frozen=True)
class Moderation:
    """sensitive_word_avoidance{enabled, type: keywords|openai_moderation, config{keywords,
    inputs_config{enabled, preset_response}, outputs_config{…}, model?}}."""

    kind: str
    keywords: tuple[str, ...]
    inputs: bool
    outputs: bool
    input_reply: str
    output_reply: str
    model: tuple[str, str] | None

    @classmethod
    def from_config(cls, config: dict) -> Moderation | None:
        raw = config.get("sensitive_word_avoidance") or {}
        if not raw.get("enabled"):
            return None
        settings = raw.get("config") or {}
        inputs = settings.get("inputs_config") or {}
        outputs = settings.get("outputs_config") or {}
        keywords = settings.get("keywords") or ""
        if isinstance(keywords, str):
            keywords = keywords.splitlines()
        words = tuple(w.strip().lower() for w in keywords if str(w).strip())[:MAX_KEYWORDS]
        model = settings.get("model") or {}
        ref = (model.get("provider"), model.get("name")) if model.get("provider") else None
        return cls(
            kind=raw.get("type") or "keywords",
            keywords=words,
            inputs=bool(inputs.get("enabled", True)),
            outputs=bool(outputs.get("enabled", False)),
            input_reply=inputs.get("preset_response") or DEFAULT_PRESET,
            output_reply=outputs.get("preset_response") or DEFAULT_PRESET,
            model=ref,
        )

    def keyword_hit(self, text: str) -> bool:
        if self.kind != "keywords" or not text:
            return False
        lowered = text.lower()
        return any(word in lowered for word in self.keywords)

    async def flagged(self, text: str, *, workspace_id) -> bool:
        """Whether the text breaks the rules: a keyword, or the moderation model says so."""
        if self.kind == "keywords":
            return self.keyword_hit(text)
        if not text.strip():
            return False
        provider, model = self.model or await offload(_default_moderation_model)(workspace_id)
        instance = ModelInstance(
            workspace=workspace_id, provider=provider, model=model, model_type="moderation"
        )
        try:
            return (await instance.invoke_moderation(text)).flagged
        except InvokeError:
            logger.warning("Moderation model call failed; the text is let through")
            return False


def _default_moderation_model(workspace_id) -> tuple[str, str]:
    from apps.providers.selectors import default_models  # only apps with model moderation

    default = default_models(workspace=workspace_id).get("moderation")
    if default is not None:
        return default.provider, default.model
    return "openai", "omni-moderation-latest"


# --- Annotation reply -------------------------------------------------------------------


def annotation_settings(config: dict) -> tuple[str, str, float] | None:
    """(embedding provider, model, score threshold) when annotation reply is on."""
    raw = config.get("annotation_reply") or {}
    if not raw.get("enabled"):
        return None
    model = raw.get("embedding_model") or {}
    provider = model.get("embedding_provider_name") or ""
    name = model.get("embedding_model_name") or ""
    if not provider or not name:
        return None
    threshold = raw.get("score_threshold")
    return provider, name, float(1 if threshold is None else threshold)


async def embed(workspace_id, provider: str, model: str, texts: list[str]) -> list[list[float]]:
    instance = ModelInstance(
        workspace=workspace_id, provider=provider, model=model, model_type="text-embedding"
    )
    return (await instance.invoke_text_embedding(texts, input_type="query")).vectors


async def annotation_match(*, app, config: dict, query: str) -> Annotation | None:
    """The closest annotated question above the threshold, its hit count raised; None
    when annotation reply is off, nothing is close enough, or embedding fails."""
    settings = annotation_settings(config)
    if settings is None or not query.strip():
        return None
    provider, model, threshold = settings
    try:
        await annotations_embed_missing(app=app, provider=provider, model=model)
        [vector] = await embed(app.workspace_id, provider, model, [query])
    except InvokeError:
        logger.warning("Annotation reply skipped: the embedding model failed")
        return None
    return await offload(_nearest)(app, f"{provider}/{model}", vector, threshold)


async def annotations_embed_missing(*, app, provider: str, model: str) -> None:
    """Embed annotations that have no vector for this model yet (new, or the model changed)."""
    name = f"{provider}/{model}"
    stale = await offload(_stale)(app, name)
    if not stale:
        return
    vectors = await embed(app.workspace_id, provider, model, [q for _, q in stale])
    await offload(_store)(stale, vectors, name)


def _stale(app, name: str) -> list[tuple]:
    rows = Annotation.objects.for_workspace(app.workspace_id).filter(app=app)
    return list(rows.exclude(embedding_model=name).values_list("pk", "question")[:500])


def _store(stale, vectors, name: str) -> None:
    for (pk, _), vector in zip(stale, vectors, strict=True):
        Annotation.objects.filter(pk=pk).update(embedding=vector, embedding_model=name)


def _nearest(app, name: str, vector, threshold: float) -> Annotation | None:
    best = (
        Annotation.objects.for_workspace(app.workspace_id)
        .filter(app=app, embedding_model=name, embedding__isnull=False)
        .select_related("created_by")
        .annotate(distance=CosineDistance("embedding", vector))
        .order_by("distance")
        .first()
    )
    if best is None or 1 - best.distance < threshold - 1e-9:
        return None
    Annotation.objects.filter(pk=best.pk).update(hit_count=F("hit_count") + 1)
    return best


# --- Knowledge ------------------------------------------------------------------------


def knowledge_datasets(config: dict) -> list:
    configs = config.get("dataset_configs") or {}
    return ((configs.get("datasets") or {}).get("datasets")) or []


def knowledge_retrieve(
    *, workspace, dataset_configs: dict, query: str, debugger: bool, app_id
) -> list[dict]:
    """retriever_resources for the query from the app's knowledge bases (sync)."""
    return retrieve_for_app(
        workspace=workspace,
        dataset_configs=dataset_configs,
        query=query,
        retriever_from="dev" if debugger else "api",
        app_id=app_id,
    )


def context_text(resources: list[dict]) -> str:
    return "\n\n".join(str(r.get("content") or "") for r in resources if r.get("content"))


# --- Suggested questions ----------------------------------------------------------------

SUGGEST_PROMPT = (
    "Suggest three short questions the user might ask next, based on the conversation "
    "below. Answer with a JSON array of three strings and nothing else.\n\n{history}"
)


async def suggested_questions(
    *,
    workspace_id,
    provider: str,
    model: str,
    fallbacks: list[ModelRef] = (),
    history: list[tuple[str, str]],
) -> list[str]:
    """Follow-up questions from the app's model, or its fallbacks when it fails."""
    text = "\n".join(f"User: {q}\nAssistant: {a}" for q, a in history[-3:])
    instance = ModelInstance(
        workspace=workspace_id, provider=provider, model=model, fallbacks=fallbacks
    )
    request = LLMRequest(
        model=model,
        messages=[LLMMessage("user", SUGGEST_PROMPT.format(history=text))],
        parameters={"max_tokens": 256, "temperature": 0},
    )
    result = await instance.invoke_llm(request)
    return parse_questions(result.text)


def parse_questions(text: str) -> list[str]:
    """Three questions from a model's reply: a JSON array if it wrote one, else its lines."""
    match = re.search(r"\[.*\]", text or "", re.S)
    if match:
        try:
            items = json.loads(match.group(0))
        except ValueError:
            items = None
        if isinstance(items, list):
            return [str(item).strip() for item in items if str(item).strip()][:3]
    lines = [line.strip(" -*0123456789.\t") for line in (text or "").splitlines()]
    return [line for line in lines if line][:3]
