"""Google Gemini API (generativelanguage): base URL ends in /v1beta.

POST models/{model}:generateContent, :streamGenerateContent?alt=sse and :batchEmbedContents,
GET models. Function calls carry no id on this API, so we make one up; a function response
is matched to its call by name, which we look up from the assistant turn that made the call.
An https image is fetched (through the connection's guarded client) and sent inline, since
fileData only takes URIs of Google's own Files API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable

import httpx

from apps.providers.runtime import errors
from apps.providers.runtime.adapters.base import (
    Adapter,
    arguments_object,
    collect,
    data_url_parts,
    event_json,
    fetch_image,
    map_status,
    new_call_id,
    requested_format,
    sse_events,
    tool_finish,
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
    TextPart,
    ToolCallDelta,
    ToolSpec,
    Usage,
    UsageEvent,
)

MAX_INLINE_BYTES = 20 * 1024 * 1024  # the whole request may not exceed 20 MB

_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
_GENERATION_CONFIG = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "max_tokens": "maxOutputTokens",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}
_TASK_TYPES = {"document": "RETRIEVAL_DOCUMENT", "query": "RETRIEVAL_QUERY"}
# The OpenAPI-subset Schema fields Gemini accepts; anything else is refused with a 400.
_SCHEMA_FIELDS = {
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "items",
    "minItems",
    "maxItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "anyOf",
    "propertyOrdering",
}


class GeminiAdapter(Adapter):
    protocol = "gemini"
    max_embedding_batch = 100

    def _headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self.conn.api_key or ""}

    def error_for(self, status: int, body: bytes, headers: httpx.Headers) -> errors.InvokeError:
        try:
            data = json.loads(body)
        except ValueError:
            data = body.decode(errors="replace")
        return gemini_error(status, data, headers)

    # --- LLM -----------------------------------------------------------------------
    async def invoke_llm(self, request: LLMRequest) -> LLMResult:
        payload = await self._payload(request)
        path = f"{model_name(request.model)}:generateContent"
        response = await self.send("POST", path, json=payload, headers=self._headers())
        reader = _Reader()
        events = reader.feed(response.json()) + reader.end()
        return await collect(request.model, _replay(events))

    async def stream_llm(self, request: LLMRequest) -> AsyncIterator[LLMEvent]:
        payload = await self._payload(request)
        path = f"{model_name(request.model)}:streamGenerateContent"
        response = await self.open_stream(
            "POST", path, params={"alt": "sse"}, json=payload, headers=self._headers()
        )
        reader = _Reader()
        try:
            async for _, data in sse_events(response):
                for event in reader.feed(event_json(data)):
                    yield event
        finally:
            await response.aclose()
        for event in reader.end():
            yield event

    async def _payload(self, request: LLMRequest) -> dict:
        payload: dict = {"contents": await self._contents(request.messages)}
        system = [m.text for m in request.messages if m.role == "system" and m.text]
        if system:
            payload["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
        if request.tools:
            payload["tools"] = [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
        config = generation_config(request)
        if config:
            payload["generationConfig"] = config
        return payload

    async def _contents(self, messages: list[Message]) -> list[dict]:
        """Our turns as Gemini contents (roles user/model); adjacent turns of one role merge
        so the answers to parallel function calls travel together."""
        names: dict[str, str] = {}  # tool-call id -> function name
        contents: list[dict] = []
        for message in messages:
            if message.role == "system":
                continue
            if message.role == "assistant":
                names.update((call.id, call.name) for call in message.tool_calls)
                role, parts = "model", _assistant_parts(message)
            elif message.role == "tool":
                role, parts = "user", [_function_response(message, names)]
            else:
                role, parts = "user", await self._user_parts(message)
            if not parts:
                continue
            if contents and contents[-1]["role"] == role:
                contents[-1]["parts"].extend(parts)
            else:
                contents.append({"role": role, "parts": parts})
        return contents

    async def _user_parts(self, message: Message) -> list[dict]:
        if isinstance(message.content, str):
            return [{"text": message.content}] if message.content else []
        parts = []
        for part in message.content:
            if isinstance(part, TextPart) and part.text:
                parts.append({"text": part.text})
            elif isinstance(part, ImagePart):
                parts.append(await self._image(part.url))
        return parts

    async def _image(self, url: str) -> dict:
        parsed = data_url_parts(url)
        if parsed is not None:
            media_type, data = parsed
        else:
            media_type, data = await fetch_image(self.http, url, MAX_INLINE_BYTES)
            if not media_type.startswith("image/"):
                raise errors.InvokeBadRequestError(f"{url} is not an image ({media_type or '?'})")
        return {"inlineData": {"mimeType": media_type, "data": data}}

    # --- Embeddings and models -------------------------------------------------------
    async def embed(
        self, model: str, texts: list[str], *, input_type: str = "document"
    ) -> EmbeddingResult:
        name = model_name(model)
        task = _TASK_TYPES.get(input_type, "RETRIEVAL_DOCUMENT")
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.max_embedding_batch):
            batch = texts[start : start + self.max_embedding_batch]
            requests = [
                {"model": name, "content": {"parts": [{"text": text}]}, "taskType": task}
                for text in batch
            ]
            response = await self.send(
                "POST",
                f"{name}:batchEmbedContents",
                json={"requests": requests},
                headers=self._headers(),
            )
            vectors += [item["values"] for item in response.json()["embeddings"]]
        return EmbeddingResult(vectors=vectors)  # this API reports no token counts

    async def list_models(self) -> list[RemoteModel]:
        models: list[RemoteModel] = []
        params: dict = {"pageSize": 1000}
        while True:
            response = await self.send("GET", "models", params=params, headers=self._headers())
            page = response.json()
            models += [m for m in map(_remote_model, page.get("models", [])) if m]
            if not page.get("nextPageToken"):
                return models
            params["pageToken"] = page["nextPageToken"]


# --- Request pieces ---------------------------------------------------------------------


def model_name(model: str) -> str:
    return model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"


def generation_config(request: LLMRequest) -> dict:
    params = request.parameters
    config = {
        theirs: params[ours]
        for ours, theirs in _GENERATION_CONFIG.items()
        if params.get(ours) is not None
    }
    if request.stop:
        config["stopSequences"] = list(request.stop)
    kind, schema = requested_format(params)
    if kind in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
    if schema is not None:
        config["responseSchema"] = gemini_schema(schema)
    return config


def gemini_schema(schema: dict) -> dict:
    """JSON Schema as Gemini's Schema: unknown keywords dropped (the API refuses them, e.g.
    additionalProperties), types upper-cased, ["string", "null"] as a nullable string."""
    result: dict = {}
    for key, value in schema.items():
        if key == "type":
            types = value if isinstance(value, list) else [value]
            real = [t for t in types if t != "null"]
            if len(real) < len(types):
                result["nullable"] = True
            if real:
                result["type"] = str(real[0]).upper()
        elif key == "properties":
            result[key] = {name: gemini_schema(sub) for name, sub in value.items()}
        elif key == "items":
            result[key] = gemini_schema(value)
        elif key == "anyOf":
            result[key] = [gemini_schema(sub) for sub in value]
        elif key in _SCHEMA_FIELDS:
            result[key] = value
    return result


def _declaration(spec: ToolSpec) -> dict:
    declaration: dict = {"name": spec.name, "description": spec.description}
    # An OBJECT without properties is refused ("should be non-empty for OBJECT type").
    if spec.parameters.get("properties"):
        declaration["parameters"] = gemini_schema(spec.parameters)
    return declaration


def _assistant_parts(message: Message) -> list[dict]:
    parts: list[dict] = [{"text": message.text}] if message.text else []
    for call in message.tool_calls:
        args = arguments_object(call.arguments)
        parts.append({"functionCall": {"name": call.name, "args": args}})
    return parts


def _function_response(message: Message, names: dict[str, str]) -> dict:
    """The response must be an object; a plain result goes under "output", the key the
    API documents for a function's output."""
    name = message.name or names.get(message.tool_call_id or "", "")
    try:
        value = json.loads(message.text)
    except ValueError:
        value = message.text
    response = value if isinstance(value, dict) else {"output": value}
    return {"functionResponse": {"name": name, "response": response}}


# --- Response pieces --------------------------------------------------------------------


def gemini_error(status: int, data: object, headers: httpx.Headers | None = None):
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return map_status(status, str(error or data)[:500], headers)
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    effective = status
    if any(d.get("reason") == "API_KEY_INVALID" for d in details):
        effective = 401  # Google answers a wrong key with 400 INVALID_ARGUMENT
    mapped = map_status(effective, str(error.get("message") or error)[:500], headers)
    mapped.upstream_status = status
    if isinstance(mapped, errors.InvokeRateLimitError) and mapped.retry_after is None:
        mapped.retry_after = _retry_delay(details)
    return mapped


def _retry_delay(details: list[dict]) -> float | None:
    for detail in details:
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            try:
                return float(str(detail.get("retryDelay", "")).removesuffix("s"))
            except ValueError:
                return None
    return None


def _usage(metadata: dict) -> Usage:
    """Thinking tokens are billed as output, so they count as output here."""
    return Usage(
        input_tokens=metadata.get("promptTokenCount") or 0,
        output_tokens=(metadata.get("candidatesTokenCount") or 0)
        + (metadata.get("thoughtsTokenCount") or 0),
    )


def _remote_model(item: dict) -> RemoteModel | None:
    methods = item.get("supportedGenerationMethods") or []
    if "generateContent" in methods:
        model_type = "llm"
    elif "embedContent" in methods:
        model_type = "text-embedding"
    else:
        return None
    return RemoteModel(
        model=item["name"].removeprefix("models/"),
        model_type=model_type,
        context_size=item.get("inputTokenLimit"),
    )


async def _replay(events: Iterable[LLMEvent]) -> AsyncIterator[LLMEvent]:
    for event in events:
        yield event


class _Reader:
    """Folds GenerateContentResponse chunks (one for a blocking call, many for a stream)
    into our events. Usage is cumulative in every chunk; the last one wins."""

    def __init__(self) -> None:
        self.usage = Usage()
        self.finish: str | None = None
        self.calls = 0

    def feed(self, chunk: dict) -> list[LLMEvent]:
        if "error" in chunk:  # an error that arrives inside a stream
            raise gemini_error(int(chunk["error"].get("code") or 500), chunk)
        if chunk.get("usageMetadata"):
            self.usage = _usage(chunk["usageMetadata"])
        candidates = chunk.get("candidates") or []
        if not candidates:
            if (chunk.get("promptFeedback") or {}).get("blockReason"):
                self.finish = "content_filter"  # the prompt itself was blocked
            return []
        candidate = candidates[0]
        events: list[LLMEvent] = []
        for part in (candidate.get("content") or {}).get("parts") or []:
            if part.get("thought"):
                continue  # thought summaries are not the answer
            if part.get("text"):
                events.append(TextDelta(part["text"]))
            elif "functionCall" in part:
                events.append(self._call(part["functionCall"]))
        if candidate.get("finishReason"):
            self.finish = _FINISH.get(candidate["finishReason"], "stop")
        return events

    def _call(self, call: dict) -> ToolCallDelta:
        delta = ToolCallDelta(
            index=self.calls,
            id=call.get("id") or new_call_id(),
            name=call["name"],
            arguments=json.dumps(call.get("args") or {}),
        )
        self.calls += 1
        return delta

    def end(self) -> list[LLMEvent]:
        if self.finish is None:
            raise errors.InvokeConnectionError("The provider's answer ended without a finish")
        # Gemini says STOP after function calls too.
        reason = tool_finish(self.finish, called_tools=self.calls > 0)
        return [UsageEvent(self.usage), Finish(reason)]
