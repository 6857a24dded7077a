"""The OpenAI-compatible gateway: /v1/chat/completions, /v1/embeddings, /v1/models over
the workspace's own providers, with a gateway key. `model` is written provider/model.
Errors come in OpenAI's shape so OpenAI clients raise their usual exceptions."""

from __future__ import annotations

import base64
import struct
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass

import orjson
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, ValidationError

from apps.core.errors import DomainError
from apps.providers import selectors
from apps.providers.batching import ready_batches
from apps.providers.instance import ModelInstance, ModelRef
from apps.providers.runtime import errors
from apps.providers.runtime.types import (
    Finish,
    ImagePart,
    LLMRequest,
    Message,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    UsageEvent,
)
from apps.tenants.auth import GatewayApiKey

APP_KEY_PREFIX = "app-"

AppChatHandler = Callable[[HttpRequest, str, dict], Awaitable[HttpResponse]]
_app_chat_handler: AppChatHandler | None = None


def register_app_chat_handler(handler: AppChatHandler | None) -> None:
    """Let another app answer /v1/chat/completions for bearer tokens starting with
    APP_KEY_PREFIX: `await handler(request, token, body)` with the body parsed as a JSON
    object. The handler checks the token itself (nothing here has looked it up). The chat
    app registers itself (providers must not import chat); None unregisters, and then
    such tokens get the usual 401. The raw-ASGI fast path (gateway_asgi) leaves these
    tokens to this view."""
    global _app_chat_handler
    _app_chat_handler = handler


PASSTHROUGH = ("temperature", "top_p", "top_k", "presence_penalty", "frequency_penalty", "seed")


class GatewayError(DomainError):
    code = "invalid_request_error"


def openai_error(status: int, message: str, code: str, kind: str = "invalid_request_error"):
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JsonResponse(body, status=status)


gateway_api = NinjaAPI(
    title="Orrery model gateway (OpenAI-compatible)",
    version="1",
    urls_namespace="gateway",
    auth=GatewayApiKey(),
    docs_url="/gateway-docs",
    openapi_url="/gateway-openapi.json",
)


@gateway_api.exception_handler(errors.InvokeError)
def on_invoke_error(request, exc: errors.InvokeError):
    kind = "rate_limit_error" if isinstance(exc, errors.InvokeRateLimitError) else "api_error"
    return openai_error(exc.status, str(exc), exc.code, kind)


@gateway_api.exception_handler(DomainError)
def on_domain_error(request, exc: DomainError):
    return openai_error(exc.status, exc.message, exc.code)


@gateway_api.exception_handler(AuthenticationError)
def on_auth_error(request, exc):
    return openai_error(401, "Invalid gateway API key.", "invalid_api_key")


@gateway_api.exception_handler(ValidationError)
def on_validation_error(request, exc: ValidationError):
    return openai_error(400, str(exc.errors[:1]), "invalid_request")


def _json_body(request) -> dict:
    return parse_body(request.body)


def parse_body(raw: bytes) -> dict:
    try:
        body = orjson.loads(raw or b"{}")
    except ValueError as exc:
        raise GatewayError("The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise GatewayError("The request body must be a JSON object.")
    return body


# --- /v1/models --------------------------------------------------------------------


@gateway_api.get("/models")
def models(request):
    rows = selectors.usable_models(workspace=request.workspace)
    return {
        "object": "list",
        "data": [
            {
                "id": f"{r.provider}/{r.model}",
                "object": "model",
                "created": 0,
                "owned_by": r.provider,
            }
            for r in rows
            if r.model_type in ("llm", "text-embedding")
        ],
    }


# --- /v1/chat/completions ----------------------------------------------------------


def _message(raw: dict) -> Message:
    role = raw.get("role")
    if role not in ("system", "user", "assistant", "tool", "developer"):
        raise GatewayError(f"Unknown message role {role!r}.")
    content = raw.get("content") or ""
    if isinstance(content, list):
        parts: list[TextPart | ImagePart] = []
        for part in content:
            if part.get("type") == "text":
                parts.append(TextPart(part.get("text", "")))
            elif part.get("type") == "image_url":
                image = part.get("image_url") or {}
                parts.append(
                    ImagePart(url=image.get("url", ""), detail=image.get("detail", "auto"))
                )
            else:
                raise GatewayError(f"Unsupported content part {part.get('type')!r}.")
        content = parts
    elif not isinstance(content, str):
        raise GatewayError("Message content must be a string or a list of parts.")
    calls = [
        ToolCall(
            id=c.get("id", ""),
            name=c["function"]["name"],
            arguments=c["function"].get("arguments", ""),
        )
        for c in raw.get("tool_calls") or []
    ]
    return Message(
        role="system" if role == "developer" else role,
        content=content,
        tool_calls=calls,
        tool_call_id=raw.get("tool_call_id"),
        name=raw.get("name"),
    )


def _llm_request(body: dict, model: str) -> LLMRequest:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise GatewayError("messages must be a non-empty list.")
    if body.get("n", 1) != 1:
        raise GatewayError("Only n=1 is supported.")
    params = {k: body[k] for k in PASSTHROUGH if body.get(k) is not None}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    response_format = body.get("response_format") or {}
    if response_format.get("type") in ("json_object", "json_schema"):
        params["response_format"] = response_format["type"]
        if response_format["type"] == "json_schema":
            params["json_schema"] = response_format.get("json_schema") or {}
    stop = body.get("stop") or []
    tools = [
        ToolSpec(
            name=t["function"]["name"],
            description=t["function"].get("description", ""),
            parameters=t["function"].get("parameters") or {"type": "object", "properties": {}},
        )
        for t in body.get("tools") or []
        if t.get("type") == "function"
    ]
    try:
        return LLMRequest(
            model=model,
            messages=[_message(m) for m in messages],
            parameters=params,
            tools=tools,
            stop=[stop] if isinstance(stop, str) else list(stop),
            user=body.get("user"),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise GatewayError(f"Malformed request: {exc}") from exc


def _fallbacks(body: dict) -> list[ModelRef]:
    """Orrery's extension: `"fallbacks": ["provider/model", …]` are tried in order when
    the model fails before answering (OpenAI clients send it with extra_body)."""
    raw = body.get("fallbacks") or []
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise GatewayError("fallbacks must be a list of provider/model names.")
    return [ModelRef.parse(item) for item in raw[:5]]


class AppToken(str):
    """An app key presented to /v1/chat/completions, with the handler that answers it."""

    handler: AppChatHandler


class ChatCompletionsKey(GatewayApiKey):
    """A gateway key, or an app key when an app chat handler is registered."""

    async def authenticate(self, request, token: str):
        handler = _app_chat_handler
        if token.startswith(APP_KEY_PREFIX):
            if handler is None:
                return None
            app_token = AppToken(token)
            app_token.handler = handler
            return app_token
        return await super().authenticate(request, token)


@gateway_api.post("/chat/completions", auth=ChatCompletionsKey())
async def chat_completions(request):
    body = _json_body(request)
    if isinstance(request.auth, AppToken):
        return await request.auth.handler(request, str(request.auth), body)
    call = chat_call(workspace=request.workspace, body=body)
    if call.stream:
        response = StreamingHttpResponse(chat_stream(call), content_type="text/event-stream")
        for name, value in STREAM_HEADERS.items():
            response[name] = value
        return response
    return await chat_completion(call)


STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass(frozen=True)
class ChatCall:
    """A validated /v1/chat/completions request, ready to run (shared by the Django view
    and the raw-ASGI fast path in gateway_asgi)."""

    instance: ModelInstance
    request: LLMRequest
    completion_id: str
    model_name: str
    stream: bool
    include_usage: bool


def chat_call(*, workspace, body: dict) -> ChatCall:
    """Validate a request body; GatewayError / InvokeError (both DomainErrors) say why not.
    Touches neither the database nor the network."""
    ref = ModelRef.parse(str(body.get("model", "")))
    try:
        llm_request = _llm_request(body, ref.model)
        fallbacks = _fallbacks(body)
        stream_options = body.get("stream_options") or {}
        include_usage = bool(stream_options.get("include_usage"))
    except (KeyError, TypeError, AttributeError) as exc:
        raise GatewayError(f"Malformed request: {exc}") from exc
    return ChatCall(
        instance=ModelInstance(
            workspace=workspace,
            provider=ref.provider,
            model=ref.model,
            fallbacks=fallbacks,
            source="gateway",
        ),
        request=llm_request,
        completion_id=f"chatcmpl-{uuid.uuid4().hex}",
        model_name=f"{ref.provider}/{ref.model}",
        stream=bool(body.get("stream")),
        include_usage=include_usage,
    )


async def chat_completion(call: ChatCall) -> dict:
    result = await call.instance.invoke_llm(call.request)
    message: dict = {"role": "assistant", "content": result.text or None}
    if result.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in result.tool_calls
        ]
    return {
        "id": call.completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": call.model_name,
        "choices": [{"index": 0, "message": message, "finish_reason": result.finish_reason}],
        "usage": _usage(result.usage),
    }


def _usage(usage) -> dict:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


class ChunkEncoder:
    """chat.completion.chunk SSE frames. Everything but the delta is the same in every
    chunk of a stream, so it is encoded once and each token costs one small dumps."""

    def __init__(self, completion_id: str, model_name: str):
        head = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model_name,
        }
        self.head = b"data: " + orjson.dumps(head)[:-1] + b',"choices":'

    def delta(self, delta: dict, finish: str | None = None) -> bytes:
        choice = orjson.dumps({"index": 0, "delta": delta, "finish_reason": finish})
        return self.head + b"[" + choice + b"]}\n\n"

    def text(self, text: str) -> bytes:
        return (
            self.head
            + b'[{"index":0,"delta":{"content":'
            + orjson.dumps(text)
            + b'},"finish_reason":null}]}\n\n'
        )

    def usage(self, usage) -> bytes:
        return self.head + b'[],"usage":' + orjson.dumps(_usage(usage)) + b"}\n\n"

    def event(self, event) -> bytes:
        """The frame for one runtime event (b"" for those that make none)."""
        if isinstance(event, TextDelta):
            return self.text(event.text)
        if isinstance(event, ToolCallDelta):
            call: dict = {"index": event.index, "function": {"arguments": event.arguments}}
            if event.id:
                call["id"], call["type"] = event.id, "function"
            if event.name:
                call["function"]["name"] = event.name
            return self.delta({"tool_calls": [call]})
        if isinstance(event, Finish):
            return self.delta({}, finish=event.reason)
        return b""


DONE = b"data: [DONE]\n\n"


def error_frame(exc: DomainError) -> bytes:
    error = {"message": str(exc), "type": "api_error", "param": None, "code": exc.code}
    return b"data: " + orjson.dumps({"error": error}) + b"\n\n"


async def chat_stream(call: ChatCall) -> AsyncIterator[bytes]:
    """The SSE body: a role chunk at once, then the events of each network read as one
    write, an error in the stream's own terms if the model fails mid-way, then [DONE]."""
    encode = ChunkEncoder(call.completion_id, call.model_name)
    yield encode.delta({"role": "assistant", "content": ""})
    usage = None
    try:
        async with aclosing(ready_batches(call.instance.stream_llm(call.request))) as batches:
            async for batch in batches:
                frames = []
                for event in batch:
                    if isinstance(event, UsageEvent):
                        usage = event.usage
                    else:
                        frames.append(encode.event(event))
                if frames:
                    yield b"".join(frames)
    except DomainError as exc:
        yield error_frame(exc)
    else:
        if call.include_usage and usage is not None:
            yield encode.usage(usage)
    yield DONE


# --- /v1/embeddings ----------------------------------------------------------------


@gateway_api.post("/embeddings")
async def embeddings(request):
    body = _json_body(request)
    ref = ModelRef.parse(str(body.get("model", "")))
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise GatewayError("input must be a string or a non-empty list of strings.")
    instance = ModelInstance(
        workspace=request.workspace,
        provider=ref.provider,
        model=ref.model,
        model_type="text-embedding",
        source="gateway",
    )
    result = await instance.invoke_text_embedding(texts)
    as_base64 = body.get("encoding_format") == "base64"
    return {
        "object": "list",
        "model": f"{ref.provider}/{ref.model}",
        "data": [
            {
                "object": "embedding",
                "index": i,
                "embedding": _b64(vector) if as_base64 else vector,
            }
            for i, vector in enumerate(result.vectors)
        ],
        "usage": {
            "prompt_tokens": result.usage.input_tokens,
            "total_tokens": result.usage.input_tokens,
        },
    }


def _b64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
