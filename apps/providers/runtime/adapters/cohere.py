"""Cohere API v2: POST {base}/chat, /embed, /rerank (base ends in /v2), Bearer auth.

Usage is taken from `billed_units` (what the price applies to), falling back to `tokens`.
A generation Cohere ends with ERROR or TIMEOUT raises InvokeServerUnavailableError rather
than passing a cut-short answer off as complete."""

from __future__ import annotations

from collections.abc import AsyncIterator

from apps.providers.runtime import errors
from apps.providers.runtime.adapters.base import (
    Adapter,
    event_json,
    function_tool,
    ranked,
    requested_format,
    sse_events,
)
from apps.providers.runtime.types import (
    EmbeddingResult,
    Finish,
    ImagePart,
    LLMEvent,
    LLMRequest,
    LLMResult,
    Message,
    RerankResult,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
)

_FINISH = {"TOOL_CALL": "tool_calls", "MAX_TOKENS": "length"}
_FAILED = {"ERROR", "TIMEOUT"}
_PARAMETERS = {
    "temperature": "temperature",
    "top_p": "p",
    "top_k": "k",
    "max_tokens": "max_tokens",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
_INPUT_TYPES = {"document": "search_document", "query": "search_query"}


class CohereAdapter(Adapter):
    protocol = "cohere"
    max_embedding_batch = 96
    # Cohere's own statuses, as the ones our mapping knows: 498 is an invalid token,
    # 402 an account out of credit (a quota, so another credential may still work).
    status_aliases = {498: 401, 402: 429}

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.conn.api_key or ''}"}

    # --- LLM -----------------------------------------------------------------------
    async def invoke_llm(self, request: LLMRequest) -> LLMResult:
        response = await self.send(
            "POST", "chat", json=build_payload(request), headers=self._headers()
        )
        return parse_chat(request.model, response.json())

    async def stream_llm(self, request: LLMRequest) -> AsyncIterator[LLMEvent]:
        payload = {**build_payload(request), "stream": True}
        response = await self.open_stream("POST", "chat", json=payload, headers=self._headers())
        ended = False
        try:
            async for event, data in sse_events(response):
                chunk = event_json(data)
                kind = chunk.get("type", event)
                for item in stream_events(kind, chunk):
                    yield item
                ended = ended or kind == "message-end"
        finally:
            await response.aclose()
        if not ended:
            raise errors.InvokeConnectionError("The provider's stream ended before message-end")

    # --- Embeddings and rerank -------------------------------------------------------
    async def embed(
        self, model: str, texts: list[str], *, input_type: str = "document"
    ) -> EmbeddingResult:
        result = EmbeddingResult(vectors=[])
        for start in range(0, len(texts), self.max_embedding_batch):
            payload = {
                "model": model,
                "texts": texts[start : start + self.max_embedding_batch],
                "input_type": _INPUT_TYPES.get(input_type, "search_document"),
                "embedding_types": ["float"],
            }
            response = await self.send("POST", "embed", json=payload, headers=self._headers())
            data = response.json()
            result.vectors += data["embeddings"]["float"]
            billed = (data.get("meta") or {}).get("billed_units") or {}
            result.usage.input_tokens += billed.get("input_tokens") or 0
        return result

    async def rerank(
        self, model: str, query: str, documents: list[str], *, top_n: int | None = None
    ) -> RerankResult:
        payload: dict = {"model": model, "query": query, "documents": documents}
        if top_n is not None:
            payload["top_n"] = top_n
        response = await self.send("POST", "rerank", json=payload, headers=self._headers())
        scores = ((r["index"], r["relevance_score"]) for r in response.json()["results"])
        return RerankResult(items=ranked(scores, documents, top_n))


# --- Request ----------------------------------------------------------------------------


def build_payload(request: LLMRequest) -> dict:
    params = request.parameters
    payload: dict = {"model": request.model, "messages": [_message(m) for m in request.messages]}
    for ours, theirs in _PARAMETERS.items():
        if params.get(ours) is not None:
            payload[theirs] = params[ours]
    if request.stop:
        payload["stop_sequences"] = list(request.stop)
    if request.tools:
        payload["tools"] = [function_tool(spec) for spec in request.tools]
    kind, schema = requested_format(params)
    if schema is not None:
        payload["response_format"] = {"type": "json_object", "json_schema": schema}
    elif kind == "json_object":
        payload["response_format"] = {"type": "json_object"}
    return payload


def _message(message: Message) -> dict:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
    if message.role == "assistant" and message.tool_calls:
        turn: dict = {
            "role": "assistant",
            "tool_calls": [_tool_call(c) for c in message.tool_calls],
        }
        if message.text:
            turn["content"] = message.text
        return turn
    if isinstance(message.content, str) or message.role != "user":
        return {"role": message.role, "content": message.text}
    return {"role": "user", "content": [_part(part) for part in message.content]}


def _part(part: TextPart | ImagePart) -> dict:
    if isinstance(part, ImagePart):
        return {"type": "image_url", "image_url": {"url": part.url}}
    return {"type": "text", "text": part.text}


def _tool_call(call: ToolCall) -> dict:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments or "{}"},
    }


# --- Response ---------------------------------------------------------------------------


def parse_chat(model: str, data: dict) -> LLMResult:
    message = data.get("message") or {}
    text = "".join(
        part.get("text", "") for part in message.get("content") or [] if part.get("type") == "text"
    )
    calls = [
        ToolCall(id=c["id"], name=c["function"]["name"], arguments=c["function"]["arguments"])
        for c in message.get("tool_calls") or []
    ]
    return LLMResult(
        model=model,
        text=text,
        tool_calls=calls,
        usage=_usage(data.get("usage") or {}),
        finish_reason=finish_reason(data.get("finish_reason")),
    )


def finish_reason(reason: str | None) -> str:
    if reason in _FAILED:
        raise errors.InvokeServerUnavailableError(
            "The provider stopped generating", provider_message=f"finish_reason {reason}"
        )
    return _FINISH.get(reason or "", "stop")


def _usage(usage: dict) -> Usage:
    counts = usage.get("billed_units") or usage.get("tokens") or {}
    return Usage(
        input_tokens=int(counts.get("input_tokens") or 0),
        output_tokens=int(counts.get("output_tokens") or 0),
    )


def stream_events(kind: str, chunk: dict) -> list[LLMEvent]:
    """One Cohere stream event as ours; the tool-call `index` numbers tool calls only."""
    delta = chunk.get("delta") or {}
    message = delta.get("message") or {}
    if kind == "content-delta":
        text = (message.get("content") or {}).get("text") or ""
        return [TextDelta(text)] if text else []
    if kind in ("tool-call-start", "tool-call-delta"):
        call = message.get("tool_calls") or {}
        function = call.get("function") or {}
        return [
            ToolCallDelta(
                index=chunk.get("index", 0),
                id=call.get("id"),
                name=function.get("name"),
                arguments=function.get("arguments") or "",
            )
        ]
    if kind == "message-end":
        return [
            UsageEvent(_usage(delta.get("usage") or {})),
            Finish(finish_reason(delta.get("finish_reason"))),
        ]
    return []  # message-start, content-start/-end, tool-plan-delta, citations
