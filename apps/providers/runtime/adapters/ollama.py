"""Ollama's native API: /api/chat (an NDJSON stream, or one JSON object), /api/embed and
/api/tags. Connection.base_url is the server root (http://localhost:11434)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from apps.providers.runtime import errors
from apps.providers.runtime.adapters.base import (
    Adapter,
    arguments_object,
    data_url_parts,
    fetch_image,
    function_tool,
    map_status,
    ndjson_lines,
    new_call_id,
    read_json,
    requested_format,
    tool_finish,
    vectors_for,
)
from apps.providers.runtime.types import (
    EmbeddingResult,
    Finish,
    ImagePart,
    LLMEvent,
    LLMRequest,
    LLMResult,
    Message,
    RemoteModel,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
)

# Parameters that go at the top of the body; every other one is a model option.
_TOP_LEVEL = frozenset({"keep_alive", "think"})
_SHAPING = frozenset({"response_format", "json_schema"})
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # for a linked image we fetch and send inline


# --- Request mapping ---------------------------------------------------------------------


def options_from(request: LLMRequest) -> dict[str, Any]:
    """Parameter-rule values as Ollama options: max_tokens becomes num_predict, the rest
    (temperature, top_p, top_k, seed, num_ctx, ...) keep their names."""
    options = {
        k: v
        for k, v in request.parameters.items()
        if v is not None and k not in _TOP_LEVEL | _SHAPING
    }
    if "max_tokens" in options:
        options["num_predict"] = options.pop("max_tokens")
    if request.stop:
        options["stop"] = list(request.stop)
    return options


def format_from(parameters: dict) -> str | dict | None:
    """Structured output: "json", or the JSON schema itself (Ollama wants it unwrapped)."""
    kind, schema = requested_format(parameters)
    if schema is not None:
        return schema
    return "json" if kind == "json_object" else None


def arguments_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments or {})


def tool_call_from(call: dict) -> ToolCall:
    function = call.get("function") or {}
    return ToolCall(
        # Ollama gives no call ids (newer versions may); our tool turns need one.
        id=call.get("id") or new_call_id(),
        name=function.get("name") or "",
        arguments=arguments_text(function.get("arguments")),
    )


def usage_from(data: dict) -> Usage:
    return Usage(
        input_tokens=int(data.get("prompt_eval_count") or 0),
        output_tokens=int(data.get("eval_count") or 0),
    )


def done_reason(data: dict, *, called_tools: bool) -> str:
    # Besides stop and length Ollama says "load"/"unload" for turns that only moved a model.
    reason = "length" if data.get("done_reason") == "length" else "stop"
    return tool_finish(reason, called_tools=called_tools)


def guess_model_type(model: dict) -> str:
    details = model.get("details") or {}
    families = details.get("families") or [details.get("family") or ""]
    name = str(model.get("name") or "").lower()
    if "embed" in name or any("bert" in str(family) for family in families):
        return "text-embedding"
    return "llm"


# --- The adapter -------------------------------------------------------------------------


class OllamaAdapter(Adapter):
    """Ollama itself takes no key; a proxy in front of it (or ollama.com) may, as a Bearer."""

    protocol: ClassVar[str] = "ollama"

    async def chat_body(self, request: LLMRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": await self.messages_body(request.messages),
            "stream": stream,
        }
        options = options_from(request)
        if options:
            body["options"] = options
        output_format = format_from(request.parameters)
        if output_format is not None:
            body["format"] = output_format
        if request.tools:
            body["tools"] = [function_tool(tool) for tool in request.tools]
        for name in _TOP_LEVEL:
            if request.parameters.get(name) is not None:
                body[name] = request.parameters[name]
        return body

    async def messages_body(self, messages: list[Message]) -> list[dict[str, Any]]:
        tool_names: dict[str, str] = {}  # call id → tool name, for the tool turns
        bodies = []
        for message in messages:
            tool_names.update((call.id, call.name) for call in message.tool_calls)
            bodies.append(await self.message_body(message, tool_names))
        return bodies

    async def message_body(self, message: Message, tool_names: dict[str, str]) -> dict[str, Any]:
        body: dict[str, Any] = {"role": message.role, "content": message.text}
        if not isinstance(message.content, str):
            images = [
                await self.image_base64(part)
                for part in message.content
                if isinstance(part, ImagePart)
            ]
            if images:
                body["images"] = images
        if message.tool_calls:
            body["tool_calls"] = [
                {"function": {"name": call.name, "arguments": arguments_object(call.arguments)}}
                for call in message.tool_calls
            ]
        if message.role == "tool":
            name = message.name or tool_names.get(message.tool_call_id or "")
            if name:
                body["tool_name"] = name
        return body

    async def image_base64(self, image: ImagePart) -> str:
        """Ollama takes images inline as bare base64: data: URLs are unwrapped, linked images
        fetched."""
        parsed = data_url_parts(image.url)
        if parsed is None:
            parsed = await fetch_image(self.http, image.url, MAX_IMAGE_BYTES)
        _media_type, data = parsed
        return data

    # --- LLM ---------------------------------------------------------------------------
    async def stream_llm(self, request: LLMRequest) -> AsyncIterator[LLMEvent]:
        body = await self.chat_body(request, stream=True)
        response = await self.open_stream(
            "POST", "api/chat", json=body, headers=self.bearer_headers()
        )
        last: dict | None = None
        calls = 0
        try:
            async for line in ndjson_lines(response):
                if last is not None:
                    continue  # drain to the end of the body: the connection stays reusable
                if "error" in line:  # a failure after the 200 arrives as a line of its own
                    raise map_status(500, str(line["error"]))
                message = line.get("message") or {}
                if message.get("content"):
                    yield TextDelta(message["content"])
                for call in message.get("tool_calls") or []:
                    parsed = tool_call_from(call)
                    yield ToolCallDelta(
                        index=calls, id=parsed.id, name=parsed.name, arguments=parsed.arguments
                    )
                    calls += 1
                if line.get("done"):
                    last = line
        finally:
            await response.aclose()
        if last is None:
            raise errors.InvokeConnectionError("The provider's stream ended before the reply")
        yield UsageEvent(usage_from(last))
        yield Finish(done_reason(last, called_tools=calls > 0))

    async def invoke_llm(self, request: LLMRequest) -> LLMResult:
        body = await self.chat_body(request, stream=False)
        data = read_json(
            await self.send("POST", "api/chat", json=body, headers=self.bearer_headers())
        )
        message = data.get("message") or {}
        calls = [tool_call_from(call) for call in message.get("tool_calls") or []]
        return LLMResult(
            model=request.model,
            text=message.get("content") or "",
            tool_calls=calls,
            usage=usage_from(data),
            finish_reason=done_reason(data, called_tools=bool(calls)),
        )

    # --- other model types ---------------------------------------------------------------
    async def embed(
        self, model: str, texts: list[str], *, input_type: str = "document"
    ) -> EmbeddingResult:
        if not texts:
            return EmbeddingResult(vectors=[])
        body = {"model": model, "input": texts}
        data = read_json(
            await self.send("POST", "api/embed", json=body, headers=self.bearer_headers())
        )
        return EmbeddingResult(
            vectors=vectors_for(texts, data.get("embeddings") or []),
            usage=Usage(input_tokens=int(data.get("prompt_eval_count") or 0)),
        )

    async def list_models(self) -> list[RemoteModel]:
        data = read_json(await self.send("GET", "api/tags", headers=self.bearer_headers()))
        return [
            RemoteModel(model=item.get("model") or item["name"], model_type=guess_model_type(item))
            for item in data.get("models") or []
            if item.get("model") or item.get("name")
        ]
