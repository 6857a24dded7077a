"""ModelInstance: the one calling surface for every model type. It resolves credentials,
takes turns across credential sets, moves on to fallback models when a call fails before
any output, and records usage for every attempt."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

from asgiref.sync import async_to_sync

from apps.core.errors import NotFound
from apps.core.offload import offload
from apps.providers import balancing
from apps.providers.resolution import (
    CredentialChoice,
    ModelNotConfigured,
    ModelTarget,
    resolve,
    resolved_already,
)
from apps.providers.runtime import errors, pacing
from apps.providers.runtime.adapters import adapter_class
from apps.providers.runtime.adapters.base import Adapter, Connection
from apps.providers.runtime.http import provider_client
from apps.providers.runtime.types import (
    EmbeddingResult,
    LLMEvent,
    LLMRequest,
    LLMResult,
    ModerationResult,
    RerankResult,
    TextDelta,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from apps.providers.tokens import estimate_tokens
from apps.providers.usage import check_hosted_quota, usage_row, usage_save

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelRef:
    provider: str
    model: str

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """`provider/model` (the model part may itself contain slashes)."""
        provider, _, model = text.partition("/")
        if not provider or not model:
            raise errors.InvokeBadRequestError(
                f"Model {text!r} must be written provider/model, e.g. openai/gpt-4o-mini."
            )
        return cls(provider, model)


def _next_worth_trying(error: errors.InvokeError) -> bool:
    return isinstance(error, (*errors.RETRYABLE, errors.InvokeAuthorizationError))


def build_adapter(target: ModelTarget, choice: CredentialChoice) -> Adapter:
    runtime = target.provider.runtime
    base_url = runtime.base_url_from(choice.credentials) or ""
    if not base_url and runtime.protocol != "local":  # local models run in this process
        raise errors.InvokeBadRequestError(
            f"{target.provider.label.text} needs a server URL in its credentials."
        )
    connection = Connection(
        base_url=base_url.rstrip("/"),
        api_key=runtime.api_key_from(choice.credentials),
        credentials=choice.credentials,
        http=provider_client(),
        provider=target.provider.provider,
    )
    return adapter_class(runtime.protocol)(connection)


def upstream_model(target: ModelTarget, choice: CredentialChoice) -> str:
    """The name the provider knows the model by (an Azure deployment, an Ark endpoint)."""
    return target.provider.runtime.upstream_model_name(target.model, choice.credentials)


class ModelInstance:
    def __init__(
        self,
        *,
        workspace,
        provider: str,
        model: str,
        model_type: str = "llm",
        fallbacks: list[ModelRef] | tuple = (),
        source: str = "api",
        user_id=None,
        app_id=None,
    ):
        self.workspace_id = getattr(workspace, "pk", workspace)
        self.chain = [ModelRef(provider, model), *fallbacks]
        self.model_type = model_type
        self.meta = {"source": source, "user_id": user_id, "app_id": app_id}
        # The model of the chain whose output reached the caller; None until one did.
        self.answered_by: ModelTarget | None = None

    # --- attempts ------------------------------------------------------------------
    async def _attempts(self) -> AsyncIterator[tuple[ModelTarget, CredentialChoice]]:
        for position, ref in enumerate(self.chain):
            where = {
                "workspace": self.workspace_id,
                "provider": ref.provider,
                "model_type": self.model_type,
                "model": ref.model,
            }
            try:
                target = resolved_already(**where) or await offload(resolve)(**where)
            except (ModelNotConfigured, NotFound) as exc:
                if position == 0:
                    raise
                # A fallback no longer set up is passed over: its "not configured" would
                # hide the error of the model before it.
                logger.info("Fallback %s/%s skipped: %s", ref.provider, ref.model, exc)
                continue
            if len(target.choices) > 1:
                order = await offload(balancing.attempt_order)(target)
            else:
                order = list(target.choices)
            for choice in order:
                if choice.hosted:
                    await offload(check_hosted_quota)(target, choice)
                yield target, choice

    async def _record(self, target, choice, usage, started, ttft=None, status="success"):
        row = usage_row(
            target=target,
            choice=choice,
            usage=usage,
            latency_ms=int((time.perf_counter() - started) * 1000),
            ttft_ms=ttft,
            status=status,
            **self.meta,
        )
        await usage_save(row)

    async def _call(self, call: Callable[[Adapter, str], Awaitable], usage_of):
        """Run a non-streaming call on the first credential set and model that works."""
        last_error: errors.InvokeError | None = None
        async for target, choice in self._attempts():
            started = time.perf_counter()
            try:
                with balancing.in_flight(target, choice):
                    adapter = build_adapter(target, choice)
                    result = await _with_one_retry(call, adapter, upstream_model(target, choice))
            except errors.InvokeError as exc:
                await self._record(target, choice, Usage(), started, status=exc.code)
                await offload(balancing.cool_down)(target, choice, exc)
                if not _next_worth_trying(exc):
                    raise
                last_error = exc
                continue
            await self._record(target, choice, usage_of(result), started)
            self.answered_by = target
            return result
        raise last_error or errors.InvokeConnectionError("No credentials to try")

    # --- LLM -------------------------------------------------------------------------
    async def invoke_llm(self, request: LLMRequest) -> LLMResult:
        async def call(adapter: Adapter, model: str) -> LLMResult:
            result = await adapter.invoke_llm(replace(request, model=model))
            if not result.usage.total_tokens:
                result.usage = _estimate(request, result.text)
            return result

        return await self._call(call, lambda result: result.usage)

    async def stream_llm(self, request: LLMRequest) -> AsyncIterator[LLMEvent]:
        """Stream events. Once the first event is out there is no retry: the caller
        has already shown it to someone."""
        last_error: errors.InvokeError | None = None
        async for target, choice in self._attempts():
            started, ttft, usage, text = time.perf_counter(), None, None, []
            status = "cancelled"  # until the stream ends one way or the other
            try:
                with balancing.in_flight(target, choice):
                    adapter = build_adapter(target, choice)
                    upstream = replace(request, model=upstream_model(target, choice))
                    async for event in adapter.stream_llm(upstream):
                        if self.answered_by is None:  # once output has gone out, no retry
                            self.answered_by = target
                        if ttft is None and isinstance(event, TextDelta | ToolCallDelta):
                            ttft = int((time.perf_counter() - started) * 1000)
                            pacing.stream_flowing()
                        if isinstance(event, TextDelta):
                            text.append(event.text)
                        elif isinstance(event, UsageEvent):
                            usage = event.usage
                        yield event
                if usage is None:  # the provider sent no usage: count it ourselves
                    usage = _estimate(request, "".join(text))
                    yield UsageEvent(usage)
                status = "success"
            except errors.InvokeError as exc:
                status = exc.code
                await offload(balancing.cool_down)(target, choice, exc)
                if ttft is not None or not _next_worth_trying(exc):
                    raise
                last_error = exc
                continue
            finally:
                pacing.stream_ended()
                await self._record(
                    target,
                    choice,
                    usage or _estimate(request, "".join(text)),
                    started,
                    ttft,
                    status,
                )
            return
        raise last_error or errors.InvokeConnectionError("No credentials to try")

    # --- Other model types -------------------------------------------------------------
    async def invoke_text_embedding(
        self, texts: list[str], *, input_type: str = "document"
    ) -> EmbeddingResult:
        limit = await offload(self._embedding_batch_limit)()

        async def call(adapter: Adapter, model: str) -> EmbeddingResult:
            size = min(adapter.max_embedding_batch, limit or adapter.max_embedding_batch)
            vectors, usage = [], Usage()
            for start in range(0, len(texts), size):
                batch = texts[start : start + size]
                part = await adapter.embed(model, batch, input_type=input_type)
                vectors.extend(part.vectors)
                usage.input_tokens += part.usage.input_tokens or sum(map(estimate_tokens, batch))
            return EmbeddingResult(vectors=vectors, usage=usage)

        return await self._call(call, lambda result: result.usage)

    async def invoke_rerank(
        self,
        query: str,
        documents: list[str],
        *,
        top_n: int | None = None,
        score_threshold: float | None = None,
    ) -> RerankResult:
        async def call(adapter: Adapter, model: str) -> RerankResult:
            result = await adapter.rerank(model, query, documents, top_n=top_n)
            if score_threshold is not None:
                result.items = [i for i in result.items if i.score >= score_threshold]
            return result

        return await self._call(call, lambda result: result.usage)

    async def invoke_tts(self, text: str, *, voice: str = "alloy") -> bytes:
        async def call(adapter: Adapter, model: str) -> bytes:
            return b"".join([c async for c in adapter.text_to_speech(model, text, voice=voice)])

        return await self._call(call, lambda _: Usage(input_tokens=estimate_tokens(text)))

    async def invoke_speech2text(self, audio: bytes, *, filename: str = "audio.mp3") -> str:
        async def call(adapter: Adapter, model: str) -> str:
            return await adapter.speech_to_text(model, audio, filename=filename)

        return await self._call(call, lambda text: Usage(output_tokens=estimate_tokens(text)))

    async def invoke_moderation(self, text: str) -> ModerationResult:
        async def call(adapter: Adapter, model: str) -> ModerationResult:
            return await adapter.moderate(model, text)

        return await self._call(call, lambda _: Usage(input_tokens=estimate_tokens(text)))

    def _embedding_batch_limit(self) -> int | None:
        """The model's own cap on inputs per request (max_chunks), when the catalog has one."""
        ref = self.chain[0]
        target = resolve(
            workspace=self.workspace_id,
            provider=ref.provider,
            model_type=self.model_type,
            model=ref.model,
        )
        return target.spec.model_properties.get("max_chunks") if target.spec else None

    # --- Sync wrappers for the few sync callers (management commands, actors) ----------
    def invoke_llm_sync(self, request: LLMRequest) -> LLMResult:
        return async_to_sync(self.invoke_llm)(request)

    def invoke_text_embedding_sync(self, texts: list[str], **kwargs) -> EmbeddingResult:
        return async_to_sync(self.invoke_text_embedding)(texts, **kwargs)


TRANSIENT = (errors.InvokeConnectionError, errors.InvokeServerUnavailableError)
RETRY_BACKOFF = 0.25  # seconds, doubled with jitter


async def _with_one_retry(call: Callable[[Adapter, str], Awaitable], adapter: Adapter, model: str):
    """A blocking call that hit a network blip or a 5xx is tried once more on the same
    credentials after a short pause: nothing has reached the caller yet, so it is safe.
    Rate limits are not retried here; the caller moves on to other credentials."""
    try:
        return await call(adapter, model)
    except TRANSIENT:
        await asyncio.sleep(RETRY_BACKOFF * (1 + random.random()))  # noqa: S311 - jitter
        return await call(adapter, model)


def _estimate(request: LLMRequest, output: str) -> Usage:
    prompt = sum(estimate_tokens(m.text) for m in request.messages)
    return Usage(input_tokens=prompt, output_tokens=estimate_tokens(output))
