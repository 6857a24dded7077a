"""Running an app: one async producer of events per turn, for chat and completion apps.

    run = await generation.start(app=app, query="Hi", inputs={}, from_source="api",
                                 end_user=end_user)
    async for event in generation.events(run):       # or events(task_id), from anywhere
        payload = run.envelope(event)                # Dify's wire shape for the event
    await generation.stop(run.task_id)               # from any process

`start` checks everything (inputs against the form, files, model, rate limits, quota) and
raises a DomainError (`invalid_param`, `app_unavailable`, `provider_not_initialize`,
`not_found` for a foreign conversation or file, 429 `too_many_requests`) before anything
runs. It creates the Message row (status running) and returns at once; the turn runs as
its own task, so a closed client does not stop it, and it is saved once at the end
(answer, tokens, price, latency, time to first token, status normal/stopped/error).

Events (apps.chat.generation.events): AnswerChunk(answer), AnswerReplaced(answer, reason),
MessageEnd(status, answer, metadata), GenerationFailed(status, code, message),
SuggestedQuestions(questions). A watcher's stream ends after MessageEnd (or after
SuggestedQuestions when the app has them on) or after GenerationFailed; a late watcher
first gets one AnswerChunk with the whole text so far."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.chat.generation import events as ev
from apps.chat.generation import fanout, limits
from apps.chat.generation.events import (
    AnswerChunk,
    AnswerReplaced,
    Event,
    GenerationFailed,
    MessageEnd,
    SuggestedQuestions,
)
from apps.chat.generation.fanout import Run
from apps.chat.generation.inputs import InvalidInput
from apps.chat.generation.runner import MAX_EXECUTION_SECONDS, produce
from apps.chat.generation.turn import NO_PARENT, message_finish, turn_begin
from apps.chat.models import App, EndUser, Message, MessageStatus
from apps.core.offload import offload

ORPHAN_GRACE_SECONDS = 60
# A turn is stopped by its own process after MAX_EXECUTION_SECONDS, so one still running
# past this is alive nowhere: its process died (apps.chat.orphans sweeps them up).
ORPHAN_AFTER_SECONDS = MAX_EXECUTION_SECONDS + ORPHAN_GRACE_SECONDS
INTERRUPTED = "The answer was interrupted (the server restarted)."

__all__ = [
    "AnswerChunk",
    "AnswerReplaced",
    "Event",
    "GenerationFailed",
    "MessageEnd",
    "NO_PARENT",
    "Run",
    "SuggestedQuestions",
    "events",
    "run_for_message",
    "start",
    "stop",
]


async def start(
    *,
    app: App,
    from_source: str,
    query: str = "",
    inputs: dict | None = None,
    files: list | None = None,
    end_user: EndUser | None = None,
    user=None,
    conversation_id=None,
    parent_message_id=None,
    config_override: dict | None = None,
    conversation_name: str | None = None,
) -> Run:
    """Start a turn of `app` and return its Run (task_id, message_id, conversation_id).

    from_source: "api" | "webapp" | "debugger" | "openai" (FromSource).
    end_user / user: who asks (an EndUser of the public page or the Service API; a
        workspace User in the debugger). A conversation is found only for the same one.
    conversation_id: go on in this conversation (chat apps); None starts a new one.
    parent_message_id: answer again after this message (regenerate); default (None): after
        the newest; NO_PARENT: as the first turn (regenerating the first answer).
    config_override: run this configuration instead of the saved one (the debug pane).
    conversation_name: the name of a conversation this turn starts; default: the question.
    files: Dify's [{type: "image", transfer_method: "local_file"|"remote_url",
        upload_file_id | url}]."""
    config = config_override if config_override is not None else app.config
    if not isinstance(config, dict):
        raise InvalidInput("The configuration must be an object.")
    requester = str(getattr(end_user, "pk", "") or getattr(user, "pk", "") or "")
    if limits.has_limits(app):  # a thread hop only when there is something to count
        await offload(limits.admit)(app=app, requester=requester)
        if not await offload(limits.active_acquire)(app):
            raise limits.too_many_active(app)
    task_id = uuid.uuid4()
    try:
        turn = await offload(turn_begin)(
            app=app,
            config=config,
            query=query,
            inputs=inputs,
            files=files,
            from_source=from_source,
            end_user=end_user,
            user=user,
            conversation_id=conversation_id,
            parent_message_id=parent_message_id,
            task_id=task_id,
            conversation_name=conversation_name,
        )
    except BaseException:
        if app.max_active_requests:
            await offload(limits.active_release)(app)
        raise
    run = Run(
        task_id=str(task_id),
        message_id=str(turn.message.pk),
        conversation_id=str(turn.conversation.pk) if turn.conversation else None,
        mode=app.mode,
        created_at=int(turn.message.created_at.timestamp()),
    )
    fanout.register(run)
    run.task = asyncio.create_task(produce(run, turn))
    return run


async def events(run: Run | str) -> AsyncIterator[Event]:
    """Follow a run: the text so far as one AnswerChunk, then each event as it comes.
    Given a task_id, follows it wherever it runs, or replays the saved turn if it is
    over. The caller checks first that the task belongs to whoever asks
    (`run_for_message` / a Message lookup in its workspace)."""
    if isinstance(run, Run):
        async for event in run.follow():
            yield event
        return
    task_id = str(run)
    local = fanout.local(task_id)
    if local is not None:
        async for event in local.follow():
            yield event
        return

    async def saved():
        return await offload(_saved_events)(task_id)

    if fanout.shared():
        async for event in fanout.follow_remote(task_id, saved):
            yield event
        return
    for event in await saved() or await offload(_saved_events)(task_id, running_ok=True):
        yield event


async def stop(task_id: str) -> None:
    """Ask the run to stop, in this process or another; it saves the partial answer with
    status stopped and sends MessageEnd. Stopping a finished run does nothing."""
    await fanout.request_stop(str(task_id))


def run_for_message(message: Message, *, mode: str = "") -> Run:
    """The Run of a message's turn: the live one when it runs in this process, else a
    handle with its ids (for `envelope`). Look the message up in the caller's workspace
    first (services.messages.message_by_task)."""
    live = fanout.local(str(message.task_id))
    if live is not None:
        return live
    return Run(
        task_id=str(message.task_id),
        message_id=str(message.pk),
        conversation_id=str(message.conversation_id) if message.conversation_id else None,
        mode=mode,
        created_at=int(message.created_at.timestamp()),
    )


def _saved_events(task_id: str, *, running_ok: bool = False) -> list[Event] | None:
    """The closing events of a turn saved in the database; None while it still runs."""
    try:
        message = Message.objects.filter(task_id=task_id).first()
    except (ValueError, ValidationError):
        message = None
    if message is None:
        return [ev.GenerationFailed(404, "not_found", "No such task.")]
    if message.status == MessageStatus.RUNNING:
        age = (timezone.now() - message.created_at).total_seconds()
        if age > ORPHAN_AFTER_SECONDS:
            # Its process is gone (a restart): nobody will finish it, so say so once.
            message_finish(message.pk, status=MessageStatus.ERROR, error=INTERRUPTED)
            message.status, message.error = MessageStatus.ERROR, INTERRUPTED
        elif not running_ok:
            return None
    out: list[Event] = [ev.AnswerChunk(message.answer)] if message.answer else []
    if message.status == MessageStatus.ERROR:
        out.append(ev.GenerationFailed(400, "completion_request_error", message.error))
        return out
    metadata = (
        {"retriever_resources": message.retriever_resources} if message.retriever_resources else {}
    )
    out.append(ev.MessageEnd(status=message.status, answer=message.answer, metadata=metadata))
    if message.suggested_questions:
        out.append(ev.SuggestedQuestions(list(message.suggested_questions)))
    return out
