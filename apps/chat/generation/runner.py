"""The producer: one asyncio task per turn, not tied to any request, so a closed client
does not stop it. It answers from moderation or an annotation when they apply, else
streams the model; publishes events to every watcher; saves the Message once."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import aclosing, suppress
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone

from apps.chat.generation import events as ev
from apps.chat.generation import features
from apps.chat.generation.fanout import Run
from apps.chat.generation.limits import active_release
from apps.chat.generation.prompt import build_messages, fit_context
from apps.chat.generation.turn import Turn, message_finish
from apps.chat.models import AppMode, Conversation, FromSource, Message, MessageStatus
from apps.core.errors import DomainError
from apps.core.offload import offload
from apps.providers.instance import ModelInstance
from apps.providers.resolution import ModelTarget
from apps.providers.runtime.errors import InvokeError
from apps.providers.runtime.types import LLMRequest, TextDelta, Usage, UsageEvent

logger = logging.getLogger(__name__)

MAX_EXECUTION_SECONDS = 1200  # as Dify: a turn still streaming after this is stopped
MODERATION_BUFFER = 300  # characters of new answer between output moderation checks
MODERATION_POLL = 0.2  # seconds


@dataclass
class Outcome:
    status: str = MessageStatus.NORMAL
    usage: Usage = field(default_factory=Usage)
    ttft: float | None = None
    resources: list = field(default_factory=list)
    annotation: object | None = None
    error: ev.GenerationFailed | None = None
    replaced: bool = False  # output moderation swapped the answer
    answered_by: ModelTarget | None = None  # the app's model or one of its fallbacks


async def produce(run: Run, turn: Turn) -> None:
    started = time.perf_counter()
    outcome = Outcome()
    try:
        try:
            await _answer(run, turn, outcome, started)
        except DomainError as exc:  # InvokeError and the like: the caller should see it
            outcome.error = _failure(exc)
        except asyncio.CancelledError:  # the server is shutting down: keep what we have
            outcome.status = MessageStatus.STOPPED
            await asyncio.shield(_finish(run, turn, outcome, started))
            raise
        except Exception:
            logger.exception("Generation failed for message %s", run.message_id)
            outcome.error = ev.GenerationFailed(
                500, "internal_server_error", "Internal Server Error."
            )
        await _finish(run, turn, outcome, started)
        if outcome.status == MessageStatus.NORMAL and outcome.error is None:
            await _suggest(run, turn)
    finally:
        await run.close()
        if turn.app.max_active_requests:
            await offload(active_release)(turn.app)


def _failure(exc: DomainError) -> ev.GenerationFailed:
    if isinstance(exc, InvokeError):
        code = "provider_quota_exceeded" if exc.status == 429 else "completion_request_error"
        return ev.GenerationFailed(400, code, str(exc))
    return ev.GenerationFailed(exc.status, exc.code, exc.message)


async def _answer(run: Run, turn: Turn, outcome: Outcome, started: float) -> None:
    moderation = features.Moderation.from_config(turn.config)
    workspace_id = turn.app.workspace_id
    if moderation and moderation.inputs:
        text = "\n".join([turn.query, *(str(v) for v in turn.inputs.values())])
        if await moderation.flagged(text, workspace_id=workspace_id):
            run.publish(ev.AnswerChunk(moderation.input_reply))
            return
    annotation = await features.annotation_match(app=turn.app, config=turn.config, query=turn.query)
    if annotation is not None:
        outcome.annotation = annotation
        outcome.ttft = time.perf_counter() - started
        run.publish(ev.AnswerChunk(annotation.answer))
        return
    context = ""
    if features.knowledge_datasets(turn.config):
        retrieved = await offload(features.knowledge_retrieve)(
            workspace=turn.app.workspace_id,
            dataset_configs=turn.config.get("dataset_configs") or {},
            query=turn.query,
            debugger=turn.message.from_source == FromSource.DEBUGGER,
            app_id=turn.app.pk,
        )
        # Cited sources are exactly the passages the model was given.
        outcome.resources = fit_context(turn, retrieved)
        context = features.context_text(outcome.resources)
    request = LLMRequest(
        model=turn.model.name,
        messages=build_messages(turn, context=context),
        parameters=dict(turn.model.parameters),
        stop=list(turn.model.stop),
        user=run.message_id,
    )
    streaming = asyncio.create_task(_stream(run, turn, request, outcome, moderation, started))
    stopping = asyncio.create_task(run.wait_for_stop())
    try:
        await asyncio.wait(
            {streaming, stopping},
            timeout=MAX_EXECUTION_SECONDS,
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        for task in (streaming, stopping):
            if not task.done():
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
    if streaming.cancelled():
        outcome.status = MessageStatus.STOPPED
        return
    streaming.result()  # raises what the stream raised
    if moderation and moderation.outputs and not outcome.replaced:
        if moderation.kind != "keywords":  # keywords were checked on every piece
            if await moderation.flagged(run.answer, workspace_id=workspace_id):
                _replace(run, outcome, moderation.output_reply)


async def _stream(run, turn, request, outcome, moderation, started) -> None:
    instance = ModelInstance(
        workspace=turn.app.workspace_id,
        provider=turn.model.provider,
        model=turn.model.name,
        fallbacks=turn.model.fallbacks,
        source="app",
        app_id=turn.app.pk,
    )
    outputs = bool(moderation and moderation.outputs)
    watch_keywords = outputs and moderation.kind == "keywords"
    checker = None
    if outputs and not watch_keywords:
        checker = asyncio.create_task(_moderate_while_streaming(run, turn, moderation, outcome))
    try:
        async with aclosing(instance.stream_llm(request)) as stream:
            async for event in stream:
                if outcome.replaced:
                    return  # stop paying for an answer nobody will see
                if isinstance(event, TextDelta) and event.text:
                    if outcome.ttft is None:
                        outcome.ttft = time.perf_counter() - started
                    run.publish(ev.AnswerChunk(event.text))
                    if watch_keywords and moderation.keyword_hit(run.answer):
                        _replace(run, outcome, moderation.output_reply)
                        return
                elif isinstance(event, UsageEvent):
                    outcome.usage = event.usage
    finally:
        outcome.answered_by = instance.answered_by
        if checker is not None:
            checker.cancel()
            with suppress(asyncio.CancelledError):
                await checker


def _replace(run: Run, outcome: Outcome, text: str) -> None:
    outcome.replaced = True
    run.publish(ev.AnswerReplaced(text))


async def _moderate_while_streaming(run, turn, moderation, outcome) -> None:
    """Ask the moderation model about the answer so far each time another
    MODERATION_BUFFER characters have come, beside the stream (as Dify does)."""
    checked = 0
    while not outcome.replaced:
        await asyncio.sleep(MODERATION_POLL)
        if len(run.answer) - checked < MODERATION_BUFFER:
            continue
        checked = len(run.answer)
        if await moderation.flagged(run.answer, workspace_id=turn.app.workspace_id):
            _replace(run, outcome, moderation.output_reply)


def usage_metadata(
    turn: Turn, usage: Usage, latency: float, answered_by: ModelTarget | None = None
) -> dict:
    """Dify's metadata.usage: token counts, unit prices and prices as decimal strings, at
    the prices of the model that answered."""
    spec = answered_by.spec if answered_by else turn.model.spec
    pricing = spec.pricing if spec else None
    zero = Decimal(0)
    p_unit = pricing.input if pricing else zero
    c_unit = pricing.output if pricing else zero
    unit = pricing.unit if pricing else Decimal("0.000001")
    p_price = pricing.cost(usage.input_tokens, 0) if pricing else zero
    c_price = pricing.cost(0, usage.output_tokens) if pricing else zero
    return {
        "prompt_tokens": usage.input_tokens,
        "prompt_unit_price": str(p_unit),
        "prompt_price_unit": str(unit),
        "prompt_price": str(p_price),
        "completion_tokens": usage.output_tokens,
        "completion_unit_price": str(c_unit),
        "completion_price_unit": str(unit),
        "completion_price": str(c_price),
        "total_tokens": usage.total_tokens,
        "total_price": str(p_price + c_price),
        "currency": pricing.currency if pricing else "USD",
        "latency": round(latency, 3),
    }


async def _finish(run: Run, turn: Turn, outcome: Outcome, started: float) -> None:
    latency = time.perf_counter() - started
    usage = usage_metadata(turn, outcome.usage, latency, outcome.answered_by)
    status = MessageStatus.ERROR if outcome.error else outcome.status
    answered_by = outcome.answered_by
    await offload(_save)(
        turn,
        model_provider=answered_by.provider.provider if answered_by else turn.model.provider,
        model_name=answered_by.model if answered_by else turn.model.name,
        answer=run.answer,
        status=status,
        error=outcome.error.message if outcome.error else "",
        message_tokens=outcome.usage.input_tokens,
        answer_tokens=outcome.usage.output_tokens,
        total_price=Decimal(usage["total_price"]),
        currency=usage["currency"],
        latency=latency,
        first_token_latency=outcome.ttft,
        retriever_resources=outcome.resources,
        annotation=outcome.annotation,
    )
    if outcome.error is not None:
        run.publish(outcome.error)
        return
    metadata: dict = {"usage": usage}
    if (turn.config.get("retriever_resource") or {}).get("enabled", True) and outcome.resources:
        metadata["retriever_resources"] = outcome.resources
    if outcome.annotation is not None:
        author = outcome.annotation.created_by
        metadata["annotation_reply"] = {
            "id": str(outcome.annotation.pk),
            "account": {"id": str(author.pk), "name": author.name or author.email}
            if author
            else None,
        }
    run.publish(ev.MessageEnd(status=str(status), answer=run.answer, metadata=metadata))


def _save(turn: Turn, **fields) -> None:
    now = timezone.now()
    message_finish(turn.message.pk, updated_at=now, **fields)
    if turn.conversation is not None:
        Conversation.objects.filter(pk=turn.conversation.pk).update(updated_at=now)


async def _suggest(run: Run, turn: Turn) -> None:
    if turn.app.mode != AppMode.CHAT:
        return
    if not (turn.config.get("suggested_questions_after_answer") or {}).get("enabled"):
        return
    try:
        questions = await features.suggested_questions(
            workspace_id=turn.app.workspace_id,
            provider=turn.model.provider,
            model=turn.model.name,
            fallbacks=turn.model.fallbacks,
            history=[*turn.history, (turn.query, run.answer)],
        )
    except DomainError:
        logger.warning("Suggested questions failed for message %s", run.message_id)
        return
    await offload(
        lambda: Message.objects.filter(pk=turn.message.pk).update(suggested_questions=questions)
    )()
    run.publish(ev.SuggestedQuestions(questions))
