"""The web app's websocket: the page's htmx ws extension sends its form as JSON, this
consumer starts a turn through the generation pipeline (apps/chat/generation) and streams
the answer back as small HTML fragments that htmx swaps in by id.

A turn outlives the socket: closing the tab stops only the watching. Every socket open on
a conversation joins the conversation's group, so when one tab starts a turn, all of them
follow it (`run.started`), and a page opened on a conversation whose answer is still being
written picks it up where it is (the pipeline's first event to a late watcher is the whole
text so far).

Text is re-rendered as sanitised Markdown (apps/chat/markdown.py) and sent at most once a
frame or so (TextBatcher): one send per batch of tokens, not per token.

Reuse (the studio's debug pane): subclass WebAppConsumer, override `authorize` to return
an Actor for a signed-in workspace member (from_source "debugger", end_user None), and
`config_override` to return the unsaved configuration sent with the form."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import suppress
from dataclasses import dataclass
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from apps.chat import generation, visitors
from apps.chat.generation.events import AnswerChunk, AnswerReplaced
from apps.chat.markdown import GrowingMarkdown
from apps.chat.models import (
    App,
    AppMode,
    Conversation,
    EndUser,
    FromSource,
    Message,
    MessageStatus,
)
from apps.chat.visitors import Visitor
from apps.core.errors import DomainError, NotFound
from apps.core.offload import offload
from apps.providers.consumers import TextBatcher

logger = logging.getLogger(__name__)

FRAME_INTERVAL = 0.03  # seconds between two sends of the same answer, at least
FRAMES_PER_SECOND = 1000  # for all answers followed in this process together, at most
RENDER_SHARE = 5  # a frame's render time, times this, is the least time until the next
MAX_WATCHED = 8  # messages a socket follows at once
TURN_TEMPLATE = "chat/_webapp_turn.html"
RESULT_TEMPLATE = "chat/_webapp_result.html"


@dataclass(frozen=True)
class Actor:
    """Who is chatting, as the pipeline needs it."""

    app: App
    from_source: str
    end_user: EndUser | None = None
    user: object | None = None
    base_path: str = ""  # where the page's small forms post (feedback)

    @property
    def chat(self) -> bool:
        return self.app.mode in visitors.CHAT_MODES


def group_name(conversation_id) -> str:
    return f"conversation.{conversation_id}"


def error_fragment(message: str) -> str:
    return format_html(
        '<div id="chat-error" class="chat-error" hx-swap-oob="true">'
        '<p class="form-errors" role="alert" data-testid="chat-error">{}</p></div>',
        message,
    )


CLEAR_ERROR = '<div id="chat-error" class="chat-error" hx-swap-oob="true"></div>'


def answer_fragment(message_id, answer_html: str) -> str:
    """The answer so far (HTML from apps.chat.markdown), swapped into the turn's answer
    element."""
    return format_html(
        '<div id="answer-{}" hx-swap-oob="innerHTML">{}</div>',
        message_id,
        # Sanitised by apps.chat.markdown: no raw HTML of the model's survives it.
        mark_safe(answer_html),  # noqa: S308
    )


_following = 0  # answers this process streams to sockets right now


def frame_interval() -> float:
    """Each frame re-renders its answer's open Markdown block: with many answers at once,
    each is sent less often, so rendering never starves the first words of new ones."""
    return max(FRAME_INTERVAL, _following / FRAMES_PER_SECOND)


@dataclass
class PendingTurn:
    """A turn that has just started, as the templates need it before it is read back."""

    pk: str
    query: str
    status: str = MessageStatus.RUNNING
    answer: str = ""
    error: str = ""
    suggested_questions: tuple = ()
    user_rating: str = ""
    task_id: str = ""


class WebAppConsumer(AsyncWebsocketConsumer):
    """ws/webapp/<code>/?visitor=<token>[&conversation=<id>][&watch=<message ids>]"""

    actor: Actor
    conversation_id: str | None

    # --- Who may connect (overridable) ------------------------------------------------------
    def authorize(self) -> Actor:
        """The visitor of the app in the URL, or a DomainError. Runs in a thread."""
        code = self.scope["url_route"]["kwargs"]["code"]
        app = visitors.site_app(code=code)
        visitor: Visitor | None = visitors.visitor_resolve(
            app=app,
            session=self.scope.get("session"),
            user=self.scope.get("user"),
            token=self.query.get(visitors.VISITOR_PARAM, ""),
            create=False,
        )
        if visitor is None:
            raise NotFound("Reload the page.")
        return Actor(
            app=app,
            from_source=FromSource.WEB_APP,
            end_user=visitor.end_user,
            user=visitor.end_user.user,
            base_path=visitors.site_path(app),
        )

    def config_override(self, data: dict) -> dict | None:
        """An unsaved configuration to run with instead of the app's (the studio's)."""
        return None

    # --- Connection ---------------------------------------------------------------------------
    async def connect(self) -> None:
        raw = parse_qs(self.scope.get("query_string", b"").decode(errors="replace"))
        self.query = {key: values[0] for key, values in raw.items() if values}
        self.watching: dict[str, asyncio.Task] = {}
        self.conversation_id = None
        try:
            self.actor = await offload(self.authorize)()
            conversation = self.query.get("conversation")
            if conversation:
                await offload(self._check_conversation)(conversation)
        except DomainError:
            await self.close()  # before accept: the handshake is refused with a 403
            return
        await self.accept()
        if conversation:
            await self._join(conversation)
        watch = [m for m in self.query.get("watch", "").split(",") if m][:MAX_WATCHED]
        for message_id in await offload(self._to_watch)(watch):
            await self._watch(message_id)

    async def disconnect(self, code: int) -> None:
        # Only the watching stops: the turn goes on and is saved for the page's return.
        if self.conversation_id and self.channel_layer is not None:
            await self.channel_layer.group_discard(
                group_name(self.conversation_id), self.channel_name
            )
        for task in list(self.watching.values()):
            task.cancel()
        for task in list(self.watching.values()):
            with suppress(asyncio.CancelledError):
                await task

    def _check_conversation(self, conversation_id) -> None:
        try:
            found = self._conversations().filter(pk=conversation_id).exists()
        except (ValueError, ValidationError):  # not a UUID
            found = False
        if not found:
            raise NotFound("No such conversation.")

    def _conversations(self):
        return Conversation.objects.for_workspace(self.actor.app.workspace_id).filter(
            app=self.actor.app, end_user=self.actor.end_user
        )

    def _messages(self):
        return Message.objects.for_workspace(self.actor.app.workspace_id).filter(
            app=self.actor.app, end_user=self.actor.end_user
        )

    def _to_watch(self, asked: list[str]) -> list[str]:
        """The page's running messages, and any turn the conversation started since."""
        ids: list[str] = []
        for message_id in asked:
            with suppress(ValueError, ValidationError):  # a malformed id is not watched
                if self._messages().filter(pk=message_id).exists():
                    ids.append(message_id)
        if self.conversation_id:
            running = self._messages().filter(
                conversation_id=self.conversation_id, status=MessageStatus.RUNNING
            )
            ids += [str(pk) for pk in running.values_list("pk", flat=True) if str(pk) not in ids]
        return ids[:MAX_WATCHED]

    async def _join(self, conversation_id) -> None:
        self.conversation_id = str(conversation_id)
        if self.channel_layer is not None:
            await self.channel_layer.group_add(group_name(self.conversation_id), self.channel_name)

    # --- What the page sends ------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        try:
            data = json.loads(text_data or "")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            await self.send(error_fragment("The message could not be read."))
            return
        action = data.get("action") or "send"
        try:
            if action == "stop":
                await self._stop()
            elif action == "regenerate":
                await self._regenerate(data)
            else:
                await self._send_query(data)
        except DomainError as exc:
            await self.send(error_fragment(exc.message))

    def _inputs(self, data: dict) -> dict:
        return {
            key.removeprefix("input_"): value
            for key, value in data.items()
            if key.startswith("input_") and isinstance(value, str | int | float)
        }

    async def _send_query(self, data: dict) -> None:
        query = data.get("query") if self.actor.chat else ""
        if self.actor.chat and not (isinstance(query, str) and query.strip()):
            raise DomainError("Write a message to send.")
        conversation_id = data.get("conversation_id") or None if self.actor.chat else None
        if conversation_id and conversation_id != self.conversation_id:
            await offload(self._check_conversation)(conversation_id)
        await self._start(
            query=query or "",
            inputs=self._inputs(data),
            conversation_id=conversation_id,
            parent_message_id=None,
            config_override=self.config_override(data),
        )

    async def _regenerate(self, data: dict) -> None:
        message = await offload(self._regenerable)(data.get("message_id"))
        await self._start(
            query=message.query,
            inputs=message.inputs,
            conversation_id=str(message.conversation_id),
            parent_message_id=str(message.parent_message_id or generation.NO_PARENT),
            config_override=self.config_override(data),
            replaces=str(message.pk),
        )

    def _regenerable(self, message_id) -> Message:
        try:
            message = self._messages().filter(pk=message_id, conversation__isnull=False).first()
        except Exception:  # a malformed id
            message = None
        if message is None:
            raise NotFound("That message is gone: reload the page.")
        if message.status == MessageStatus.RUNNING:
            raise DomainError("Wait for the answer to finish, or stop it first.")
        return message

    async def _stop(self) -> None:
        task_ids = await offload(self._running_tasks)()
        for task_id in task_ids:
            await generation.stop(task_id)

    def _running_tasks(self) -> list[str]:
        running = self._messages().filter(status=MessageStatus.RUNNING)
        if self.actor.chat:
            running = running.filter(conversation_id=self.conversation_id)
        else:
            running = running.filter(pk__in=list(self.watching))
        return [str(t) for t in running.values_list("task_id", flat=True)]

    # --- Starting and following turns ----------------------------------------------------------
    async def _start(self, *, replaces: str | None = None, **request) -> None:
        run = await generation.start(
            app=self.actor.app,
            from_source=self.actor.from_source,
            end_user=self.actor.end_user,
            user=self.actor.user,
            files=[],
            **request,
        )
        await self.send(CLEAR_ERROR)
        conversation_id = str(run.conversation_id) if run.conversation_id else None
        event = {
            "type": "run.started",
            "message_id": str(run.message_id),
            "task_id": str(run.task_id),
            "query": request.get("query") or "",
            "replaces": replaces,
        }
        new_conversation = conversation_id and conversation_id != self.conversation_id
        if new_conversation:
            if self.conversation_id and self.channel_layer is not None:
                await self.channel_layer.group_discard(
                    group_name(self.conversation_id), self.channel_name
                )
            await self._join(conversation_id)
        # A conversation made by this turn has no other tab in its group yet, and the
        # in-memory layer's group_send walks every channel there is: only this socket.
        if conversation_id and self.channel_layer is not None and not new_conversation:
            await self.channel_layer.group_send(group_name(conversation_id), event)
        else:
            await self.run_started(event)
        if new_conversation:
            await self.send(await offload(self._new_conversation_fragments)(conversation_id))

    def _new_conversation_fragments(self, conversation_id: str) -> str:
        conversation = self._conversations().get(pk=conversation_id)
        return render_to_string(
            "chat/_webapp_new_conversation.html",
            {"c": conversation, "base_path": self.actor.base_path, "current_id": conversation_id},
        )

    async def run_started(self, event: dict) -> None:
        """A turn began in this conversation (from this socket or another tab). Only sockets
        that passed the conversation check are in its group; the turn is drawn from the
        event, without a database read, so the first words are not kept waiting."""
        message = PendingTurn(
            pk=event["message_id"], query=event.get("query") or "", task_id=event["task_id"]
        )
        turn = self._render(message, oob="")
        if self.actor.chat:
            # An oob swap other than "true" inserts the element's children: so a wrapper.
            replaces = event.get("replaces")
            where = f"outerHTML:#turn-{replaces}" if replaces else "beforeend:#chat-thread"
            turn = format_html('<div hx-swap-oob="{}">{}</div>', where, mark_safe(turn))  # noqa: S308
        await self.send(turn)
        await self._watch(message.pk, message=message)

    async def _watch(self, message_id: str, message: Message | PendingTurn | None = None) -> None:
        if message_id in self.watching or len(self.watching) >= MAX_WATCHED:
            return
        if message is None:
            message = await offload(self._message_for_page)(message_id)
            if message is None:
                return
        if message.status != MessageStatus.RUNNING:
            await self.send(self._render(message))  # it ended before we could follow it
            return
        task = asyncio.create_task(self._follow(message))
        self.watching[message_id] = task
        task.add_done_callback(lambda _: self.watching.pop(message_id, None))

    async def _follow(self, message: Message | PendingTurn) -> None:
        answer, markdown = "", GrowingMarkdown()

        async def send_text(delta: str) -> None:
            nonlocal answer
            answer += delta
            started = time.perf_counter()
            fragment = answer_fragment(message.pk, markdown.render(answer))
            spent = time.perf_counter() - started
            await self.send(fragment)
            # A long answer costs more to render each frame: send it less often, so Markdown
            # never takes more than about a fifth of the time (the rest piles up meanwhile).
            await asyncio.sleep(max(0.0, RENDER_SHARE * spent - FRAME_INTERVAL))

        global _following
        _following += 1
        try:
            batcher = TextBatcher(send_text, interval=frame_interval)
            try:
                async for event in generation.events(message.task_id):
                    if isinstance(event, AnswerChunk):
                        batcher.add(event.answer)
                    elif isinstance(event, AnswerReplaced):
                        await batcher.close(flush=False)
                        answer, markdown = "", GrowingMarkdown()
                        batcher = TextBatcher(send_text, interval=frame_interval)
                        batcher.add(event.answer)
            except asyncio.CancelledError:
                await batcher.close(flush=False)
                raise
            except Exception:
                logger.exception("Following message %s failed", message.pk)
            await batcher.close()
        finally:
            _following -= 1
        finished = await offload(self._message_for_page)(str(message.pk))
        if finished is not None:
            await self.send(self._render(finished))

    def _message_for_page(self, message_id: str) -> Message | None:
        message = self._messages().filter(pk=message_id).first()
        if message is not None:
            visitors.attach_ratings([message])
        return message

    def _render(self, message: Message, oob: str = "true") -> str:
        if self.actor.app.mode == AppMode.COMPLETION:
            return render_to_string(
                RESULT_TEMPLATE, {"turn": message, "base_path": self.actor.base_path}
            )
        return render_to_string(
            TURN_TEMPLATE,
            {"turn": message, "oob": oob, "base_path": self.actor.base_path},
        )
