"""The OpenAI wire protocol: OpenAI itself and every server that copies it (DeepSeek, Groq,
Mistral, Together, OpenRouter, vLLM, LocalAI, LM Studio, Xinference, ...), plus Azure
OpenAI, which differs only in its URLs and its key header."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from apps.providers.runtime import errors
from apps.providers.runtime.adapters.base import (
    Adapter,
    event_json,
    function_tool,
    json_schema_spec,
    map_status,
    read_json,
    sse_events,
    stream_errors,
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
    ModerationResult,
    RemoteModel,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
)

# Body fields the adapter builds itself; a parameter of the same name must not clobber them.
_RESERVED = frozenset(
    {"model", "messages", "stream", "stream_options", "tools", "response_format", "json_schema"}
)
# Finish reasons from older or merely compatible servers, in our vocabulary.
_FINISH_REASONS = {
    "function_call": "tool_calls",
    "eos": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
}
AZURE_API_VERSION = "2024-10-21"
# Azure rejects `stream_options` before this API version.
_AZURE_STREAM_USAGE_SINCE = "2024-09-01"


# --- Request mapping ---------------------------------------------------------------------


def chat_body(request: LLMRequest, *, stream: bool, include_usage: bool = True) -> dict[str, Any]:
    body = passthrough_parameters(request.parameters)
    body["model"] = request.model
    body["messages"] = [message_body(m) for m in request.messages]
    response_format = response_format_body(request.parameters)
    if response_format:
        body["response_format"] = response_format
    if request.tools:
        body["tools"] = [function_tool(t) for t in request.tools]
    if request.stop:
        body["stop"] = list(request.stop)
    if request.user:
        body["user"] = request.user
    if stream:
        body["stream"] = True
        if include_usage:
            body["stream_options"] = {"include_usage": True}
    return body


def passthrough_parameters(parameters: dict) -> dict[str, Any]:
    """Parameter-rule values (temperature, top_p, max_tokens, seed, ...) under their own
    names; unset ones (None) are left for the provider's defaults."""
    return {k: v for k, v in parameters.items() if v is not None and k not in _RESERVED}


def message_body(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
    body: dict[str, Any] = {"role": message.role}
    if message.role == "assistant" and message.tool_calls:
        body["content"] = message.text or None
        body["tool_calls"] = [tool_call_body(call) for call in message.tool_calls]
    else:
        body["content"] = content_body(message.content)
    if message.name:
        body["name"] = message.name
    return body


def content_body(content: str | list[TextPart | ImagePart]) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if all(isinstance(part, TextPart) for part in content):
        # Text alone goes as a string: some compatible servers accept nothing else.
        return "".join(part.text for part in content if isinstance(part, TextPart))
    return [part_body(part) for part in content]


def part_body(part: TextPart | ImagePart) -> dict[str, Any]:
    if isinstance(part, ImagePart):
        return {"type": "image_url", "image_url": {"url": part.url, "detail": part.detail}}
    return {"type": "text", "text": part.text}


def tool_call_body(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def response_format_body(parameters: dict) -> dict[str, Any] | None:
    kind = parameters.get("response_format")
    if isinstance(kind, dict):  # already in OpenAI's shape
        return kind
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": json_schema_spec(parameters.get("json_schema")),
        }
    return None


# --- Response mapping --------------------------------------------------------------------


def usage_from(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    return Usage(
        input_tokens=int(data.get("prompt_tokens") or 0),
        output_tokens=int(data.get("completion_tokens") or 0),
    )


def finish_reason(reason: str | None, *, called_tools: bool) -> str:
    reason = _FINISH_REASONS.get(reason or "stop", reason or "stop")
    return tool_finish(reason, called_tools=called_tools)


def result_from_completion(model: str, data: dict) -> LLMResult:
    choices = data.get("choices") or []
    if not choices:
        raise errors.InvokeConnectionError("The provider's reply has no choices")
    choice = choices[0]
    message = choice.get("message") or {}
    calls = [
        ToolCall(
            id=call.get("id") or f"call_{index}",
            name=(call.get("function") or {}).get("name", ""),
            arguments=(call.get("function") or {}).get("arguments") or "",
        )
        for index, call in enumerate(message.get("tool_calls") or [])
    ]
    return LLMResult(
        model=model,
        text=message.get("content") or "",
        tool_calls=calls,
        usage=usage_from(data.get("usage")) or Usage(),
        finish_reason=finish_reason(choice.get("finish_reason"), called_tools=bool(calls)),
    )


class StreamState:
    """Turns chat.completion.chunk payloads into events, remembering what the end needs:
    the finish reason and the usage, which arrive in separate chunks."""

    def __init__(self) -> None:
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.called_tools = False

    def feed(self, chunk: dict) -> Iterator[LLMEvent]:
        if "error" in chunk:  # some compatible servers report failures inside the stream
            raise stream_error(chunk["error"])
        self.usage = usage_from(chunk.get("usage")) or self.usage
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue  # we ask for one choice
            delta = choice.get("delta") or {}
            if delta.get("content"):
                yield TextDelta(delta["content"])
            for position, call in enumerate(delta.get("tool_calls") or []):
                self.called_tools = True
                function = call.get("function") or {}
                index = call.get("index")
                yield ToolCallDelta(
                    index=position if index is None else index,
                    id=call.get("id"),
                    name=function.get("name"),
                    arguments=function.get("arguments") or "",
                )
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def finish(self) -> Finish:
        return Finish(finish_reason(self.finish_reason, called_tools=self.called_tools))


def stream_error(error: Any) -> errors.InvokeError:
    if not isinstance(error, dict):
        return map_status(500, str(error))
    code = error.get("code")
    status = code if isinstance(code, int) and 400 <= code < 600 else 500
    return map_status(status, str(error.get("message") or error))


def guess_model_type(model_id: str) -> str:
    name = model_id.lower()
    for marker, model_type in (
        ("embed", "text-embedding"),
        ("rerank", "rerank"),
        ("whisper", "speech2text"),
        ("transcribe", "speech2text"),
        ("tts", "tts"),
        ("moderation", "moderation"),
    ):
        if marker in name:
            return model_type
    return "llm"


# --- The adapter -------------------------------------------------------------------------


class OpenAIAdapter(Adapter):
    protocol: ClassVar[str] = "openai"
    max_embedding_batch: ClassVar[int] = 2048

    # --- where and how to send (Azure overrides these) ---------------------------------
    def path(self, model: str, endpoint: str) -> str:
        return endpoint

    def query(self) -> dict[str, str]:
        return {}

    def headers(self) -> dict[str, str]:
        headers = self.bearer_headers()
        organization = self.conn.credentials.get("openai_organization")
        if organization:
            headers["OpenAI-Organization"] = str(organization)
        return headers

    def include_stream_usage(self) -> bool:
        return True

    async def post(self, model: str, endpoint: str, **kwargs: Any) -> httpx.Response:
        return await self.send(
            "POST",
            self.path(model, endpoint),
            headers=self.headers(),
            params=self.query(),
            **kwargs,
        )

    # --- LLM ---------------------------------------------------------------------------
    async def stream_llm(self, request: LLMRequest) -> AsyncIterator[LLMEvent]:
        body = chat_body(request, stream=True, include_usage=self.include_stream_usage())
        response = await self.open_stream(
            "POST",
            self.path(request.model, "chat/completions"),
            json=body,
            headers=self.headers(),
            params=self.query(),
        )
        state = StreamState()
        done = False
        try:
            async for _event, data in sse_events(response):
                # Read on to the end of the body even after [DONE], so the connection goes
                # back to the pool instead of being reset.
                if done:
                    continue
                if data.strip() == "[DONE]":
                    done = True
                    continue
                for event in state.feed(event_json(data)):
                    yield event
        finally:
            await response.aclose()
        if not done and state.finish_reason is None:
            raise errors.InvokeConnectionError("The provider's stream ended before the reply")
        if state.usage is not None:
            yield UsageEvent(state.usage)
        yield state.finish()

    async def invoke_llm(self, request: LLMRequest) -> LLMResult:
        response = await self.post(
            request.model, "chat/completions", json=chat_body(request, stream=False)
        )
        return result_from_completion(request.model, read_json(response))

    # --- other model types ---------------------------------------------------------------
    async def embed(
        self, model: str, texts: list[str], *, input_type: str = "document"
    ) -> EmbeddingResult:
        """One request for all `texts` (callers batch to max_embedding_batch); the protocol
        has no notion of query vs document, so input_type is not sent."""
        if not texts:
            return EmbeddingResult(vectors=[])
        data = read_json(
            await self.post(model, "embeddings", json={"model": model, "input": texts})
        )
        items = sorted(data.get("data") or [], key=lambda item: item.get("index", 0))
        return EmbeddingResult(
            vectors=[item["embedding"] for item in vectors_for(texts, items)],
            usage=usage_from(data.get("usage")) or Usage(),
        )

    async def text_to_speech(self, model: str, text: str, *, voice: str) -> AsyncIterator[bytes]:
        body = {"model": model, "input": text, "voice": voice, "response_format": "mp3"}
        response = await self.open_stream(
            "POST",
            self.path(model, "audio/speech"),
            json=body,
            headers=self.headers(),
            params=self.query(),
        )
        try:
            with stream_errors("audio stream"):
                async for chunk in response.aiter_bytes():
                    yield chunk
        finally:
            await response.aclose()

    async def speech_to_text(self, model: str, audio: bytes, *, filename: str) -> str:
        response = await self.post(
            model,
            "audio/transcriptions",
            data={"model": model, "response_format": "json"},
            files={"file": (filename, audio)},
        )
        return str(read_json(response).get("text") or "")

    async def moderate(self, model: str, text: str) -> ModerationResult:
        data = read_json(
            await self.post(model, "moderations", json={"model": model, "input": text})
        )
        results = data.get("results") or []
        if not results:
            raise errors.InvokeConnectionError("The provider's moderation reply has no results")
        result = results[0]
        categories = result.get("categories") or {}
        return ModerationResult(
            flagged=bool(result.get("flagged")),
            categories={name: bool(hit) for name, hit in categories.items()},
        )

    async def list_models(self) -> list[RemoteModel]:
        response = await self.send("GET", "models", headers=self.headers(), params=self.query())
        models = []
        for item in read_json(response).get("data") or []:
            if not item.get("id"):
                continue
            # OpenRouter says context_length, vLLM max_model_len; OpenAI says nothing.
            context = item.get("context_length") or item.get("max_model_len")
            models.append(
                RemoteModel(
                    model=item["id"],
                    model_type=guess_model_type(item["id"]),
                    context_size=context if isinstance(context, int) else None,
                )
            )
        return models


class AzureOpenAIAdapter(OpenAIAdapter):
    """Azure OpenAI: the model is the deployment name, in the path; the API version goes in
    the query; the key in `api-key`. Connection.base_url is the resource endpoint
    (https://<resource>.openai.azure.com)."""

    protocol: ClassVar[str] = "azure_openai"

    def api_version(self) -> str:
        return str(self.conn.credentials.get("openai_api_version") or AZURE_API_VERSION)

    def path(self, model: str, endpoint: str) -> str:
        return f"openai/deployments/{quote(model, safe='')}/{endpoint}"

    def query(self) -> dict[str, str]:
        return {"api-version": self.api_version()}

    def headers(self) -> dict[str, str]:
        return {"api-key": self.conn.api_key} if self.conn.api_key else {}

    def include_stream_usage(self) -> bool:
        return self.api_version()[:10] >= _AZURE_STREAM_USAGE_SINCE

    async def moderate(self, model: str, text: str) -> ModerationResult:
        return await Adapter.moderate(self, model, text)

    async def list_models(self) -> list[RemoteModel]:
        # Azure lists base models, not the deployments a call needs.
        return await Adapter.list_models(self)
