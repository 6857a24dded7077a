"""Anthropic Messages API: POST {base}/messages, GET {base}/models (base ends in /v1).

Structured output (response_format "json_schema") uses a forced tool: the schema becomes the
input_schema of one tool the model must call, and that call's input comes back as the reply's
text (streamed as text too). It gives schema-shaped JSON without a beta header. When the
caller brings tools of their own, or the schema's top level is not an object (a tool input
must be one), it falls back to an instruction in the system prompt, as does "json_object"."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from apps.providers.runtime import errors
from apps.providers.runtime.adapters.base import (
    Adapter,
    arguments_object,
    data_url_parts,
    event_json,
    map_status,
    requested_format,
    sse_events,
)
from apps.providers.runtime.types import (
    Finish,
    ImagePart,
    LLMEvent,
    LLMRequest,
    LLMResult,
    Message,
    RemoteModel,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
    UsageEvent,
)

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
STRUCTURED_TOOL = "structured_output"

_FINISH = {"tool_use": "tool_calls", "max_tokens": "length", "refusal": "content_filter"}
# The HTTP status each error type comes with, for errors that arrive inside a stream.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


# --- Adapter ----------------------------------------------------------------------------


class AnthropicAdapter(Adapter):
    protocol = "anthropic"

    def _headers(self) -> dict[str, str]:
        return {"x-api-key": self.conn.api_key or "", "anthropic-version": API_VERSION}

    async def invoke_llm(self, request: LLMRequest) -> LLMResult:
        payload = build_payload(request)
        response = await self.send("POST", "messages", json=payload, headers=self._headers())
        return parse_message(request.model, response.json(), structured=_is_structured(payload))

    async def stream_llm(self, request: LLMRequest) -> AsyncIterator[LLMEvent]:
        payload = {**build_payload(request), "stream": True}
        response = await self.open_stream("POST", "messages", json=payload, headers=self._headers())
        reader = _StreamReader(structured=_is_structured(payload))
        try:
            async for event, data in sse_events(response):
                for item in reader.feed(event, data):
                    yield item
        finally:
            await response.aclose()
        if not reader.stopped:
            raise errors.InvokeConnectionError("The provider's stream ended before message_stop")

    async def list_models(self) -> list[RemoteModel]:
        models: list[RemoteModel] = []
        params: dict = {"limit": 100}
        while True:
            response = await self.send("GET", "models", params=params, headers=self._headers())
            page = response.json()
            models += [RemoteModel(model=item["id"]) for item in page.get("data", [])]
            if not page.get("has_more") or not page.get("last_id"):
                return models
            params["after_id"] = page["last_id"]


# --- Request ----------------------------------------------------------------------------


def build_payload(request: LLMRequest) -> dict:
    params = request.parameters
    payload: dict = {
        "model": request.model,
        "max_tokens": int(params.get("max_tokens") or DEFAULT_MAX_TOKENS),
        "messages": _messages(request.messages),
    }
    for name in ("temperature", "top_p", "top_k"):
        if params.get(name) is not None:
            payload[name] = params[name]
    if request.stop:
        payload["stop_sequences"] = list(request.stop)
    if request.tools:
        payload["tools"] = [_tool(spec) for spec in request.tools]
    if request.user:
        payload["metadata"] = {"user_id": request.user}

    system = [m.text for m in request.messages if m.role == "system" and m.text]
    kind, schema = requested_format(params)
    if schema is not None and not request.tools and schema.get("type") == "object":
        payload["tools"] = [
            {
                "name": STRUCTURED_TOOL,
                "description": "Give your final answer by calling this tool.",
                "input_schema": schema,
            }
        ]
        payload["tool_choice"] = {"type": "tool", "name": STRUCTURED_TOOL}
    elif schema is not None:
        system.append(
            "Reply with only a JSON value, no prose and no code fence, that conforms to this "
            f"JSON Schema:\n{json.dumps(schema)}"
        )
    elif kind == "json_object":
        system.append("Reply with only a JSON object, no prose and no code fence.")
    if system:
        payload["system"] = "\n\n".join(system)
    return payload


def _is_structured(payload: dict) -> bool:
    return payload.get("tool_choice", {}).get("name") == STRUCTURED_TOOL


def _tool(spec: ToolSpec) -> dict:
    return {"name": spec.name, "description": spec.description, "input_schema": spec.parameters}


def _messages(messages: list[Message]) -> list[dict]:
    """Our turns as Anthropic's: tool results become user turns, and adjacent turns of one
    role merge (parallel tool results must share a single user turn)."""
    turns: list[dict] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _blocks(message: Message) -> list[dict]:
    if message.role == "tool":
        content = message.content if isinstance(message.content, str) else _parts(message)
        return [
            {"type": "tool_result", "tool_use_id": message.tool_call_id or "", "content": content}
        ]
    blocks = _parts(message)
    for call in message.tool_calls:
        arguments = arguments_object(call.arguments)  # a tool_use input must be an object
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments})
    return blocks


def _parts(message: Message) -> list[dict]:
    if isinstance(message.content, str):
        return [{"type": "text", "text": message.content}] if message.content else []
    blocks = []
    for part in message.content:
        if isinstance(part, TextPart) and part.text:  # empty text blocks are refused
            blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            blocks.append(_image(part))
    return blocks


def _image(part: ImagePart) -> dict:
    parsed = data_url_parts(part.url)
    if parsed is None:
        return {"type": "image", "source": {"type": "url", "url": part.url}}
    media_type, data = parsed
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


# --- Response ---------------------------------------------------------------------------


def parse_message(model: str, data: dict, *, structured: bool) -> LLMResult:
    result = LLMResult(model=model, usage=_usage(data.get("usage") or {}))
    text: list[str] = []
    for block in data.get("content") or []:
        if block.get("type") == "text":
            text.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            arguments = json.dumps(block.get("input") or {})
            if structured and block.get("name") == STRUCTURED_TOOL:
                text.append(arguments)
            else:
                result.tool_calls.append(
                    ToolCall(id=block["id"], name=block["name"], arguments=arguments)
                )
    result.text = "".join(text)
    result.finish_reason = finish_reason(data.get("stop_reason"), structured=structured)
    return result


def finish_reason(stop_reason: str | None, *, structured: bool = False) -> str:
    if structured and stop_reason == "tool_use":
        return "stop"  # the forced tool call is the answer, not a call to run
    return _FINISH.get(stop_reason or "", "stop")


def _usage(usage: dict, previous: Usage | None = None) -> Usage:
    """Input counts cached prompt tokens too: Anthropic reports them apart from input_tokens."""
    result = Usage(
        input_tokens=previous.input_tokens if previous else 0,
        output_tokens=previous.output_tokens if previous else 0,
    )
    if usage.get("input_tokens") is not None:
        result.input_tokens = (
            usage["input_tokens"]
            + (usage.get("cache_creation_input_tokens") or 0)
            + (usage.get("cache_read_input_tokens") or 0)
        )
    if usage.get("output_tokens") is not None:
        result.output_tokens = usage["output_tokens"]
    return result


def stream_error(data: dict) -> errors.InvokeError:
    error = data.get("error") or {}
    status = _ERROR_STATUS.get(error.get("type", ""), 500)
    return map_status(status, str(error.get("message") or error))


class _StreamReader:
    """Turns Anthropic's SSE events into ours. Content blocks are numbered across text and
    tool_use; our tool-call indexes count tool_use blocks only."""

    def __init__(self, *, structured: bool):
        self.structured = structured
        self.usage = Usage()
        self.stop_reason: str | None = None
        self.stopped = False
        self._tools: dict[int, int] = {}  # block index -> our tool-call index
        self._json_blocks: set[int] = set()  # the structured-output tool, streamed as text
        self._empty_input: dict[int, dict] = {}  # tool blocks no argument piece reached yet

    def feed(self, event: str, raw: str) -> list[LLMEvent]:
        data = event_json(raw)
        kind = data.get("type", event)
        if kind == "error":
            raise stream_error(data)
        handler = getattr(self, f"_on_{kind}", None)
        return handler(data) if handler else []  # ping, and event types added later

    def _on_message_start(self, data: dict) -> list[LLMEvent]:
        self.usage = _usage((data.get("message") or {}).get("usage") or {})
        return []

    def _on_content_block_start(self, data: dict) -> list[LLMEvent]:
        index, block = data["index"], data.get("content_block") or {}
        if block.get("type") == "text" and block.get("text"):
            return [TextDelta(block["text"])]
        if block.get("type") != "tool_use":
            return []  # thinking and server-tool blocks are not part of the answer
        self._empty_input[index] = block.get("input") or {}
        if self.structured and block.get("name") == STRUCTURED_TOOL:
            self._json_blocks.add(index)
            return []
        self._tools[index] = len(self._tools)
        return [ToolCallDelta(index=self._tools[index], id=block["id"], name=block["name"])]

    def _on_content_block_delta(self, data: dict) -> list[LLMEvent]:
        index, delta = data["index"], data.get("delta") or {}
        if delta.get("type") == "text_delta":
            return [TextDelta(delta.get("text", ""))]
        if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
            self._empty_input.pop(index, None)
            return self._arguments(index, delta["partial_json"])
        return []

    def _on_content_block_stop(self, data: dict) -> list[LLMEvent]:
        # A tool without arguments may get no input_json_delta at all: send its {} input.
        index = data["index"]
        if index in self._empty_input:
            return self._arguments(index, json.dumps(self._empty_input.pop(index)))
        return []

    def _arguments(self, index: int, piece: str) -> list[LLMEvent]:
        if index in self._json_blocks:
            return [TextDelta(piece)]
        if index in self._tools:
            return [ToolCallDelta(index=self._tools[index], arguments=piece)]
        return []

    def _on_message_delta(self, data: dict) -> list[LLMEvent]:
        self.stop_reason = (data.get("delta") or {}).get("stop_reason") or self.stop_reason
        self.usage = _usage(data.get("usage") or {}, self.usage)
        return []

    def _on_message_stop(self, data: dict) -> list[LLMEvent]:
        self.stopped = True
        reason = finish_reason(self.stop_reason, structured=self.structured)
        return [UsageEvent(self.usage), Finish(reason)]
