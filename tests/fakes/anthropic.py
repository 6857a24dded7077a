"""A fake Anthropic Messages API: POST /v1/messages (JSON or SSE) and GET /v1/models.

It checks what the real API checks that an adapter could get wrong (x-api-key,
anthropic-version, max_tokens, roles, image sources, tool_result ids) and answers with a
scripted Turn, or a default greeting. A forced tool choice makes it answer with that tool,
its input taken from the turn's text (JSON), as a model following the instruction would."""

from __future__ import annotations

import itertools
import json
import re
from collections import deque
from dataclasses import dataclass, field

from tests.fakes.server import FakeProvider, Reply, Request

API_KEY = "sk-ant-fake-key"
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


@dataclass
class Turn:
    """What the fake model answers next."""

    text: str = "Hello from the fake Claude."
    tool_uses: list[tuple[str, dict]] = field(default_factory=list)  # (name, input)
    stop_reason: str | None = None  # default: tool_use when it uses a tool, else end_turn
    stop_sequence: str | None = None
    input_tokens: int = 21
    output_tokens: int = 9
    cache_read_input_tokens: int = 0
    error: tuple[str, str] | None = None  # stream only: `event: error` after the first delta
    drop_after: int | None = None  # stream only: cut the connection after this many frames


def error_reply(status: int, error_type: str, message: str, headers: dict | None = None) -> Reply:
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return Reply.json({**body, "request_id": "req_fake01"}, status=status, headers=headers)


class BadRequest(Exception):
    pass


class FakeAnthropic(FakeProvider):
    def __init__(self, api_key: str = API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.turns: deque[Turn] = deque()
        self._ids = itertools.count(1)
        self.reset()
        self.route("POST", "/v1/messages", self._messages)
        self.route("GET", "/v1/models", self._list_models)

    def reset(self) -> None:
        """Forget scripted turns, queued replies and seen requests (one server, many tests)."""
        self.models = ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"]
        self.turns.clear()
        self.requests.clear()
        self._queued.clear()

    def say(self, *turns: Turn) -> None:
        self.turns.extend(turns)

    # --- /v1/messages ------------------------------------------------------------
    def _messages(self, request: Request) -> Reply:
        refused = self._refuse(request)
        if refused:
            return refused
        body = request.json()
        try:
            _validate(body)
        except BadRequest as exc:
            return error_reply(400, "invalid_request_error", str(exc))
        if body["model"] not in self.models:
            return error_reply(404, "not_found_error", f"model: {body['model']}")
        turn = self.turns.popleft() if self.turns else Turn()
        blocks = self._blocks(turn, body.get("tool_choice"))
        calls_tool = any(block["type"] == "tool_use" for block in blocks)
        stop_reason = turn.stop_reason or ("tool_use" if calls_tool else "end_turn")
        message_id = f"msg_fake{next(self._ids):04d}"
        if body.get("stream"):
            return self._stream(message_id, body["model"], blocks, stop_reason, turn)
        return Reply.json(
            {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": blocks,
                "stop_reason": stop_reason,
                "stop_sequence": turn.stop_sequence,
                "usage": _usage(turn) | {"output_tokens": turn.output_tokens},
            }
        )

    def _refuse(self, request: Request) -> Reply | None:
        if request.headers.get("x-api-key") != self.api_key:
            return error_reply(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return error_reply(
                400, "invalid_request_error", "anthropic-version: header is required"
            )
        return None

    def _blocks(self, turn: Turn, tool_choice: dict | None) -> list[dict]:
        if tool_choice and tool_choice.get("type") == "tool":
            uses = [(tool_choice["name"], json.loads(turn.text))]
            text = ""
        else:
            uses, text = turn.tool_uses, turn.text
        blocks: list[dict] = [{"type": "text", "text": text}] if text else []
        for name, arguments in uses:
            tool_id = f"toolu_fake{next(self._ids):04d}"
            blocks.append({"type": "tool_use", "id": tool_id, "name": name, "input": arguments})
        return blocks

    def _stream(
        self, message_id: str, model: str, blocks: list[dict], stop_reason: str, turn: Turn
    ) -> Reply:
        message = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _usage(turn) | {"output_tokens": 1},
        }
        frames = [_frame("message_start", {"type": "message_start", "message": message})]
        for index, block in enumerate(blocks):
            frames += _block_frames(index, block)
            if index == 0:
                frames.insert(2, _frame("ping", {"type": "ping"}))
        if turn.error:
            error_type, text = turn.error
            error = {"type": "error", "error": {"type": error_type, "message": text}}
            frames = frames[:4] + [_frame("error", error)]
        else:
            frames.append(
                _frame(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": stop_reason, "stop_sequence": turn.stop_sequence},
                        "usage": {"output_tokens": turn.output_tokens},
                    },
                )
            )
            frames.append(_frame("message_stop", {"type": "message_stop"}))
        return Reply.sse(frames, drop_after=turn.drop_after)

    # --- /v1/models --------------------------------------------------------------
    def _list_models(self, request: Request) -> Reply:
        refused = self._refuse(request)
        if refused:
            return refused
        limit = int(request.query.get("limit", ["20"])[0])
        after = request.query.get("after_id", [None])[0]
        start = self.models.index(after) + 1 if after in self.models else 0
        page = self.models[start : start + limit]
        data = [
            {
                "type": "model",
                "id": model,
                "display_name": model.replace("-", " ").title(),
                "created_at": "2025-09-29T00:00:00Z",
            }
            for model in page
        ]
        return Reply.json(
            {
                "data": data,
                "has_more": start + limit < len(self.models),
                "first_id": page[0] if page else None,
                "last_id": page[-1] if page else None,
            }
        )


# --- Wire pieces ------------------------------------------------------------------------


def _frame(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}"


def _usage(turn: Turn) -> dict:
    return {
        "input_tokens": turn.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": turn.cache_read_input_tokens,
    }


def _block_frames(index: int, block: dict) -> list[str]:
    if block["type"] == "text":
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in _words(block["text"])]
    else:
        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        # Like the real API: an empty first piece, then the JSON in arbitrary cuts.
        text = json.dumps(block["input"]) if block["input"] else ""
        pieces = [""] + [text[i : i + 7] for i in range(0, len(text), 7)]
        deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in pieces]
    frames = [
        _frame(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        )
    ]
    for delta in deltas:
        frames.append(
            _frame(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        )
    frames.append(_frame("content_block_stop", {"type": "content_block_stop", "index": index}))
    return frames


def _words(text: str) -> list[str]:
    return re.findall(r"\s*\S+", text) or [text]


# --- Request checks ---------------------------------------------------------------------


def _validate(body: dict) -> None:
    if not isinstance(body, dict):
        raise BadRequest("body: Input should be an object")
    if "max_tokens" not in body:
        raise BadRequest("max_tokens: Field required")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise BadRequest("messages: Field required")
    if "system" in body and not isinstance(body["system"], str | list):
        raise BadRequest("system: Input should be a valid string or list")
    previous_tool_ids: set[str] = set()
    for n, message in enumerate(body["messages"]):
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise BadRequest(
                f'messages.{n}.role: Unexpected role "{role}". The Messages API accepts a '
                'top-level `system` parameter, not "system" as an input message role.'
            )
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for b, block in enumerate(blocks or []):
            _validate_block(f"messages.{n}.content.{b}", block, role, previous_tool_ids)
        previous_tool_ids = {
            block["id"] for block in blocks or [] if block.get("type") == "tool_use"
        }
    for t, tool in enumerate(body.get("tools") or []):
        if not tool.get("name") or tool.get("input_schema", {}).get("type") != "object":
            raise BadRequest(f"tools.{t}.custom.input_schema.type: Input should be 'object'")


def _validate_block(where: str, block: dict, role: str, tool_ids: set[str]) -> None:
    kind = block.get("type")
    if kind == "text" and not block.get("text"):
        raise BadRequest(f"{where}.text: text content blocks must be non-empty")
    if kind == "image":
        source = block.get("source") or {}
        if source.get("type") == "base64":
            if source.get("media_type") not in IMAGE_TYPES:
                raise BadRequest(
                    f"{where}.image.source.base64.media_type: Input should be one of {IMAGE_TYPES}"
                )
            if not source.get("data"):
                raise BadRequest(f"{where}.image.source.base64.data: Field required")
        elif source.get("type") != "url" or not source.get("url", "").startswith("https://"):
            raise BadRequest(f"{where}.image.source: Input tag does not match")
    if kind == "tool_use" and role != "assistant":
        raise BadRequest(f"{where}: tool_use blocks can only appear in assistant messages")
    if kind == "tool_result" and block.get("tool_use_id") not in tool_ids:
        raise BadRequest(
            f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: "
            f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
            "`tool_use` block in the previous message."
        )
