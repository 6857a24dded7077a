"""A fake Cohere API v2: POST /v2/chat (JSON or SSE with named events), /v2/embed, /v2/rerank.

Bearer auth; errors are {"id", "message"}. It refuses what the real API refuses and an
adapter could get wrong: unknown top-level fields (e.g. top_p instead of p), roles, tool
results without a matching call, embed calls without input_type or embedding_types, more
than 96 texts, unknown models."""

from __future__ import annotations

import itertools
import json
import re
import uuid
from collections import deque
from dataclasses import dataclass, field

from tests.fakes.rerankers import fake_relevance, fake_vector
from tests.fakes.server import FakeProvider, Reply, Request

API_KEY = "co-fake-key"
CHAT_FIELDS = {
    "model",
    "messages",
    "stream",
    "tools",
    "strict_tools",
    "documents",
    "citation_options",
    "response_format",
    "safety_mode",
    "max_tokens",
    "stop_sequences",
    "temperature",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "k",
    "p",
    "logprobs",
    "tool_choice",
    "thinking",
}
INPUT_TYPES = {"search_document", "search_query", "classification", "clustering", "image"}


@dataclass
class Turn:
    """What the fake model answers next."""

    text: str = "Hello from the fake Command model."
    tool_calls: list[tuple[str, dict]] = field(default_factory=list)  # (name, arguments)
    tool_plan: str = "I will call the tool."
    finish_reason: str | None = None  # default: TOOL_CALL with tool calls, else COMPLETE
    input_tokens: int = 11
    output_tokens: int = 6
    drop_after: int | None = None  # stream only: cut the connection after this many frames


def error_reply(status: int, message: str, headers: dict | None = None) -> Reply:
    return Reply.json({"id": str(uuid.uuid4()), "message": message}, status, headers)


class BadRequest(Exception):
    pass


class FakeCohere(FakeProvider):
    def __init__(self, api_key: str = API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.turns: deque[Turn] = deque()
        self._ids = itertools.count(1)
        self.models = {
            "chat": {"command-a-03-2025", "command-r-plus-08-2024"},
            "embed": {"embed-v4.0", "embed-english-v3.0"},
            "rerank": {"rerank-v3.5", "rerank-multilingual-v3.0"},
        }
        self.reset()
        self.route("POST", "/v2/chat", self._chat)
        self.route("POST", "/v2/embed", self._embed)
        self.route("POST", "/v2/rerank", self._rerank)

    def reset(self) -> None:
        """Forget scripted turns, queued replies and seen requests (one server, many tests)."""
        self.turns.clear()
        self.requests.clear()
        self._queued.clear()

    def say(self, *turns: Turn) -> None:
        self.turns.extend(turns)

    def _refuse(self, request: Request, endpoint: str) -> Reply | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return error_reply(401, "invalid api token")
        body = request.json()
        if not isinstance(body, dict) or not body.get("model"):
            return error_reply(400, "invalid request: model must be specified")
        if body["model"] not in self.models[endpoint]:
            return error_reply(
                404,
                f"model '{body['model']}' not found, make sure the correct model ID was used "
                "and that you have access to the model.",
            )
        return None

    # --- /v2/chat ----------------------------------------------------------------
    def _chat(self, request: Request) -> Reply:
        refused = self._refuse(request, "chat")
        if refused:
            return refused
        body = request.json()
        try:
            _validate_chat(body)
        except BadRequest as exc:
            return error_reply(400, f"invalid request: {exc}")
        turn = self.turns.popleft() if self.turns else Turn()
        calls = [
            {
                "id": f"{name}_{next(self._ids):012d}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            for name, arguments in turn.tool_calls
        ]
        finish = turn.finish_reason or ("TOOL_CALL" if calls else "COMPLETE")
        usage = {
            "billed_units": {
                "input_tokens": turn.input_tokens,
                "output_tokens": turn.output_tokens,
            },
            "tokens": {
                "input_tokens": turn.input_tokens + 200,
                "output_tokens": turn.output_tokens,
            },
        }
        message_id = str(uuid.uuid4())
        if body.get("stream"):
            return Reply.sse(
                _stream_frames(message_id, turn, calls, finish, usage), drop_after=turn.drop_after
            )
        message: dict = {"role": "assistant"}
        if calls:
            message |= {"tool_plan": turn.tool_plan, "tool_calls": calls}
        else:
            message["content"] = [{"type": "text", "text": turn.text}]
        return Reply.json(
            {"id": message_id, "message": message, "finish_reason": finish, "usage": usage}
        )

    # --- /v2/embed ---------------------------------------------------------------
    def _embed(self, request: Request) -> Reply:
        refused = self._refuse(request, "embed")
        if refused:
            return refused
        body = request.json()
        texts = body.get("texts") or []
        if body.get("input_type") not in INPUT_TYPES:
            return error_reply(
                400, "invalid request: valid input_type must be provided with the provided model"
            )
        if not body.get("embedding_types"):
            return error_reply(400, "invalid request: embedding_types must be provided")
        if not texts or len(texts) > 96:
            return error_reply(
                400,
                f"invalid request: total number of texts must be between 1 and 96 - received "
                f"{len(texts)}",
            )
        embeddings = {
            kind: [fake_vector(text) for text in texts] for kind in body["embedding_types"]
        }
        return Reply.json(
            {
                "id": str(uuid.uuid4()),
                "embeddings": embeddings,
                "texts": texts,
                "meta": {
                    "api_version": {"version": "2"},
                    "billed_units": {"input_tokens": sum(len(t.split()) for t in texts)},
                },
                "response_type": "embeddings_by_type",
            }
        )

    # --- /v2/rerank --------------------------------------------------------------
    def _rerank(self, request: Request) -> Reply:
        refused = self._refuse(request, "rerank")
        if refused:
            return refused
        body = request.json()
        documents = body.get("documents") or []
        scored = [(i, fake_relevance(body["query"], doc)) for i, doc in enumerate(documents)]
        scored.sort(key=lambda pair: -pair[1])
        top = body.get("top_n")
        return Reply.json(
            {
                "id": str(uuid.uuid4()),
                "results": [
                    {"index": index, "relevance_score": score}
                    for index, score in (scored[:top] if top else scored)
                ],
                "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
            }
        )


# --- Wire pieces ------------------------------------------------------------------------


def _frame(kind: str, data: dict) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}"


def _stream_frames(
    message_id: str, turn: Turn, calls: list[dict], finish: str, usage: dict
) -> list[str]:
    start = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
    frames = [_frame("message-start", {"id": message_id, "delta": {"message": start}})]
    if calls:
        for piece in re.findall(r"\s*\S+", turn.tool_plan):
            frames.append(_frame("tool-plan-delta", {"delta": {"message": {"tool_plan": piece}}}))
        for index, call in enumerate(calls):
            opening = {**call, "function": {**call["function"], "arguments": ""}}
            frames.append(
                _frame(
                    "tool-call-start",
                    {"index": index, "delta": {"message": {"tool_calls": opening}}},
                )
            )
            arguments = call["function"]["arguments"]
            for at in range(0, len(arguments), 6):
                piece = {"function": {"arguments": arguments[at : at + 6]}}
                frames.append(
                    _frame(
                        "tool-call-delta",
                        {"index": index, "delta": {"message": {"tool_calls": piece}}},
                    )
                )
            frames.append(_frame("tool-call-end", {"index": index}))
    else:
        opening = {"message": {"content": {"type": "text", "text": ""}}}
        frames.append(_frame("content-start", {"index": 0, "delta": opening}))
        for piece in re.findall(r"\s*\S+", turn.text):
            content = {"message": {"content": {"text": piece}}}
            frames.append(_frame("content-delta", {"index": 0, "delta": content}))
        frames.append(_frame("content-end", {"index": 0}))
    frames.append(_frame("message-end", {"delta": {"finish_reason": finish, "usage": usage}}))
    return frames


# --- Request checks ---------------------------------------------------------------------


def _validate_chat(body: dict) -> None:
    for key in body:
        if key not in CHAT_FIELDS:
            raise BadRequest(f"unknown field: parameter {key} is not a valid field")
    messages = body.get("messages")
    if not messages:
        raise BadRequest("messages must not be empty")
    call_ids: set[str] = set()
    for n, message in enumerate(messages):
        role = message.get("role")
        if role not in ("system", "user", "assistant", "tool"):
            raise BadRequest(f"messages[{n}]: invalid role {role!r}")
        if role == "assistant":
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                if not call.get("id") or not isinstance(function.get("arguments"), str):
                    raise BadRequest(
                        f"messages[{n}].tool_calls: id and function.arguments required"
                    )
                call_ids.add(call["id"])
            if not message.get("tool_calls") and not message.get("content"):
                raise BadRequest(f"messages[{n}]: assistant message must have content")
        if role == "tool" and message.get("tool_call_id") not in call_ids:
            raise BadRequest(
                f"messages[{n}]: tool_call_id {message.get('tool_call_id')!r} not found"
            )
    response_format = body.get("response_format") or {"type": "text"}
    if response_format.get("type") not in ("text", "json_object"):
        raise BadRequest("response_format.type must be one of text, json_object")
