"""What a generation emits. Every consumer (the Service API's SSE, the web app's
websocket, the studio's debug pane) reads the same events; `Run.envelope(event)` gives the
Dify wire shape, with task_id, message_id, conversation_id and created_at."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar


@dataclass(frozen=True)
class AnswerChunk:
    """More answer text. A late watcher's first chunk is the whole text so far."""

    answer: str
    event: ClassVar[str] = "message"


@dataclass(frozen=True)
class AnswerReplaced:
    """The answer so far is replaced (output moderation): show `answer` instead."""

    answer: str
    reason: str = "output_moderation"
    event: ClassVar[str] = "message_replace"


@dataclass(frozen=True)
class MessageEnd:
    """The turn is over and saved. `status` is normal or stopped; `answer` is the whole
    final answer; `metadata` is Dify's {usage, retriever_resources, annotation_reply?}."""

    status: str
    answer: str
    metadata: dict = field(default_factory=dict)
    event: ClassVar[str] = "message_end"


@dataclass(frozen=True)
class GenerationFailed:
    """The turn failed (saved with status error). Dify's {status, code, message}."""

    status: int
    code: str
    message: str
    event: ClassVar[str] = "error"


@dataclass(frozen=True)
class SuggestedQuestions:
    """Follow-up questions, after MessageEnd, when the app has them enabled. Orrery's own
    event: the Service API does not send it (Dify clients ask GET /messages/{id}/suggested)."""

    questions: list[str]
    event: ClassVar[str] = "suggested_questions"


Event = AnswerChunk | AnswerReplaced | MessageEnd | GenerationFailed | SuggestedQuestions
TERMINAL = (MessageEnd, GenerationFailed)
_BY_NAME = {
    cls.event: cls
    for cls in (AnswerChunk, AnswerReplaced, MessageEnd, GenerationFailed, SuggestedQuestions)
}


def to_dict(event: Event) -> dict:
    return {"event": event.event, **asdict(event)}


def from_dict(data: dict) -> Event:
    data = dict(data)
    cls = _BY_NAME[data.pop("event")]
    return cls(**data)


def dify_payload(event: Event) -> dict:
    """The event's own fields as Dify sends them (the envelope adds the ids)."""
    if isinstance(event, AnswerChunk):
        return {"answer": event.answer}
    if isinstance(event, AnswerReplaced):
        return {"answer": event.answer, "reason": event.reason}
    if isinstance(event, MessageEnd):
        return {"metadata": event.metadata, "files": []}
    if isinstance(event, GenerationFailed):
        return {"status": event.status, "code": event.code, "message": event.message}
    return {"questions": event.questions}
