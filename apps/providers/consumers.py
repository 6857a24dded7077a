"""The playground's websocket: the browser's htmx ws extension sends the form as JSON, this
consumer streams the answer back as small HTML fragments swapped in out of band.

Nothing the client sends is trusted beyond a lookup: the workspace id must be one of the
signed-in user's memberships, the model one of that workspace's usable models, and each
parameter must fit the model's rule."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from decimal import Decimal

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string
from django.utils.html import format_html

from apps.core.errors import DomainError, PermissionDenied
from apps.providers.instance import ModelInstance
from apps.providers.runtime.types import LLMRequest, Message, TextDelta, Usage, UsageEvent
from apps.providers.views.playground import (
    ModelChoice,
    PlaygroundInputError,
    model_choice,
    model_choices,
    read_parameters,
    read_text,
)
from apps.providers.views.usage import format_cost
from apps.tenants.models import Membership
from apps.tenants.permissions import can
from apps.tenants.selectors import membership_current, membership_list_for_user

logger = logging.getLogger(__name__)

# Text is sent at most this often: the first piece at once, what arrives meanwhile together.
FLUSH_INTERVAL = 0.04
ANSWER_TARGET = "#playground-answer"
STATUS_TEMPLATE = "providers/playground_status.html"


@dataclass(frozen=True)
class Run:
    """A checked request, ready to stream."""

    membership: Membership
    choice: ModelChoice
    request: LLMRequest


@dataclass(frozen=True)
class Outcome:
    usage: Usage
    ttft_ms: int | None
    total_ms: int
    cost: Decimal | None
    currency: str

    @property
    def cost_text(self) -> str:
        return "no price listed" if self.cost is None else format_cost(self.cost, self.currency)


class TextBatcher:
    """Collects text deltas and hands them to `send` at most once per `interval`: the
    first piece goes at once (the first token shows without delay), later pieces wait
    for the next turn together, so a fast model costs tens of sends a second, not
    hundreds."""

    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        interval: float | Callable[[], float] = FLUSH_INTERVAL,
    ):
        """`interval`: seconds, or a function asked before each wait (for a pace that
        follows the server's load)."""
        self._send = send
        self._interval = interval if callable(interval) else lambda: interval
        self._pending: list[str] = []
        self._wake = asyncio.Event()
        self._pump_task = asyncio.create_task(self._pump())

    def add(self, text: str) -> None:
        self._pending.append(text)
        self._wake.set()

    async def _pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()
            await asyncio.sleep(self._interval())

    async def flush(self) -> None:
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            await self._send(text)

    async def close(self, *, flush: bool = True) -> None:
        self._pump_task.cancel()
        with suppress(asyncio.CancelledError):
            await self._pump_task
        if flush:
            await self.flush()


def text_fragment(text: str) -> str:
    """Model text, escaped, appended to the answer."""
    return format_html('<div hx-swap-oob="beforeend:{}">{}</div>', ANSWER_TARGET, text)


def status_fragment(state: str, **context) -> str:
    return render_to_string(STATUS_TEMPLATE, {"state": state, **context})


def _price(choice: ModelChoice, usage: Usage) -> tuple[Decimal | None, str]:
    """The call's cost from the catalog price: the same sum the usage ledger records."""
    pricing = choice.spec.pricing if choice.spec else None
    if pricing is None:
        return None, ""
    return pricing.cost(usage.input_tokens, usage.output_tokens), pricing.currency


class PlaygroundConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        self.generation: asyncio.Task | None = None
        self.closed = False
        if user is None or not user.is_authenticated:
            await self.close()  # before accept: the handshake is refused with a 403
            return
        self.user = user
        await self.accept()

    async def disconnect(self, code: int) -> None:
        # The playground shows the answer only on this page: once it is gone, stop paying.
        self.closed = True
        await self._cancel()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        try:
            data = json.loads(text_data or "")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            await self.send(status_fragment("error", message="The message could not be read."))
            return
        await self._cancel()  # one answer at a time; a new question replaces the old one
        if data.get("action") == "stop":
            return
        try:
            run = await database_sync_to_async(self._prepare)(data)
        except DomainError as exc:
            await self.send(status_fragment("error", message=exc.message))
            return
        await self.send(status_fragment("running", start=True))
        self.generation = asyncio.create_task(self._generate(run))

    async def _cancel(self) -> None:
        task, self.generation = self.generation, None
        if task is not None and not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    # --- Checking the request (in a thread: it reads the database) ----------------------
    def _membership(self, workspace_id) -> Membership:
        if not workspace_id:
            membership = membership_current(user=self.user)
        else:
            try:
                workspace_id = uuid.UUID(str(workspace_id))
            except ValueError:
                membership = None
            else:
                memberships = membership_list_for_user(user=self.user)
                membership = memberships.filter(workspace_id=workspace_id).first()
        if membership is None:
            raise PermissionDenied("You are not a member of that workspace.")
        if not can(membership.role, "apps.use"):
            raise PermissionDenied("Your role in this workspace does not allow the playground.")
        return membership

    def _prepare(self, data: dict) -> Run:
        membership = self._membership(data.get("workspace"))
        choice = model_choice(model_choices(workspace=membership.workspace), data.get("model"))
        if choice is None:
            raise PlaygroundInputError(
                "That model is not available in this workspace. Pick one from the list."
            )
        parameters = read_parameters(choice.rules, data)
        system = read_text(data, "system", "System prompt", required=False)
        message = read_text(data, "message", "Message", required=True)
        messages = [Message("system", system)] if system.strip() else []
        messages.append(Message("user", message))
        request = LLMRequest(model=choice.model, messages=messages, parameters=parameters)
        return Run(membership=membership, choice=choice, request=request)

    # --- Streaming ------------------------------------------------------------------------
    async def _send_text(self, text: str) -> None:
        await self.send(text_fragment(text))

    async def _generate(self, run: Run) -> None:
        instance = ModelInstance(
            workspace=run.membership.workspace_id,
            provider=run.choice.provider,
            model=run.choice.model,
            source="playground",
            user_id=self.user.pk,
        )
        batcher = TextBatcher(self._send_text)
        started, ttft_ms, usage = time.perf_counter(), None, Usage()
        try:
            async for event in instance.stream_llm(run.request):
                if isinstance(event, TextDelta) and event.text:
                    if ttft_ms is None:
                        ttft_ms = int((time.perf_counter() - started) * 1000)
                    batcher.add(event.text)
                elif isinstance(event, UsageEvent):
                    usage = event.usage
        except asyncio.CancelledError:
            if not self.closed:  # stopped from the page: show what came, and say so
                await batcher.close()
                await self.send(status_fragment("stopped"))
            else:
                await batcher.close(flush=False)
            raise
        except DomainError as exc:  # InvokeError keeps the provider's words in str()
            await batcher.close()
            await self.send(status_fragment("error", message=str(exc)))
            return
        except Exception:
            logger.exception("Playground generation failed")
            await batcher.close()
            await self.send(status_fragment("error", message="Something went wrong on our side."))
            return
        await batcher.close()
        cost, currency = _price(run.choice, usage)
        outcome = Outcome(
            usage=usage,
            ttft_ms=ttft_ms,
            total_ms=int((time.perf_counter() - started) * 1000),
            cost=cost,
            currency=currency,
        )
        await self.send(status_fragment("done", outcome=outcome))
