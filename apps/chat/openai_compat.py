"""Every app as an OpenAI-compatible model: `POST /v1/chat/completions` with the app's
API key (`Bearer app-…`) runs the app. The last user message is the query; earlier
messages are not replayed (the app keeps its own memory: pass Orrery's `conversation_id`
extension, e.g. through the OpenAI SDK's extra_body, to go on in a conversation, whose id
comes back in the `conversation_id` field). A text generator gets the query as its
`query` input, merged over an optional `inputs` extension. `user` names the end user.

The gateway (apps.providers.gateway) calls `handle` for app keys; ChatConfig.ready()
registers it."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from apps.chat import generation
from apps.chat.keys import app_api_key_authenticate
from apps.chat.models import AppMode, EndUser, FromSource
from apps.chat.services.end_users import end_user_get_or_create
from apps.core.errors import DomainError, RateLimited
from apps.core.offload import offload

DEFAULT_USER = "openai-client"


def openai_error(status: int, message: str, code: str, kind: str = "invalid_request_error"):
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JsonResponse(body, status=status)


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _files(content) -> list[dict]:
    """image_url parts of the last message as Dify remote_url image files."""
    if not isinstance(content, list):
        return []
    return [
        {"type": "image", "transfer_method": "remote_url", "url": part["image_url"]["url"]}
        for part in content
        if isinstance(part, dict)
        and part.get("type") == "image_url"
        and isinstance(part.get("image_url"), dict)
        and str(part["image_url"].get("url", "")).startswith(("http://", "https://"))
    ]


def _query(body: dict) -> tuple[str, list[dict]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise DomainError("messages must be a non-empty list.", code="invalid_request")
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        raise DomainError("messages must contain a user message.", code="invalid_request")
    last = users[-1].get("content")
    return _text(last), _files(last)


async def handle(request: HttpRequest, token: str, body: dict) -> HttpResponse:
    app = await offload(app_api_key_authenticate)(raw=token)
    if app is None:
        return openai_error(401, "Invalid app API key.", "invalid_api_key")
    try:
        query, files = _query(body)
        user = body.get("user") if isinstance(body.get("user"), str) else ""
        end_user = await offload(end_user_get_or_create)(
            app=app, source=EndUser.Source.SERVICE_API, session_id=user or DEFAULT_USER
        )
        inputs = body.get("inputs") if isinstance(body.get("inputs"), dict) else {}
        if app.mode == AppMode.COMPLETION:
            inputs = {**inputs, "query": query}
        conversation_id = body.get("conversation_id")
        run = await generation.start(
            app=app,
            from_source=FromSource.OPENAI,
            query=query,
            inputs=inputs,
            files=files,
            end_user=end_user,
            conversation_id=conversation_id if isinstance(conversation_id, str) else None,
        )
    except RateLimited as exc:
        response = openai_error(429, exc.message, exc.code, "rate_limit_error")
        response["Retry-After"] = str(exc.retry_after)
        return response
    except DomainError as exc:
        return openai_error(exc.status, exc.message, exc.code)
    model = str(body.get("model") or app.name)
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        response = StreamingHttpResponse(
            _chunks(run, model, include_usage), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response
    return await _completion(run, model)


def _usage(metadata: dict) -> dict:
    usage = metadata.get("usage") or {}
    return {
        "prompt_tokens": usage.get("prompt_tokens", 0),
        "completion_tokens": usage.get("completion_tokens", 0),
        "total_tokens": usage.get("total_tokens", 0),
    }


async def _completion(run: generation.Run, model: str) -> HttpResponse:
    answer = ""
    async for event in generation.events(run):
        if isinstance(event, generation.AnswerChunk):
            answer += event.answer
        elif isinstance(event, generation.GenerationFailed):
            return openai_error(
                event.status if event.status >= 400 else 500, event.message, event.code, "api_error"
            )
        elif isinstance(event, generation.MessageEnd):
            body = {
                "id": f"chatcmpl-{run.message_id}",
                "object": "chat.completion",
                "created": run.created_at,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": event.answer},
                        "finish_reason": "stop",
                    }
                ],
                "usage": _usage(event.metadata),
                "conversation_id": run.conversation_id,
            }
            return JsonResponse(body)
    return openai_error(500, "The answer ended unexpectedly.", "internal_error", "api_error")


async def _chunks(run: generation.Run, model: str, include_usage: bool) -> AsyncIterator[bytes]:
    created = int(time.time())

    def chunk(delta: dict | None, finish: str | None = None, usage: dict | None = None) -> bytes:
        data: dict = {
            "id": f"chatcmpl-{run.message_id}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if usage is not None:
            data["usage"] = usage
        if run.conversation_id:
            data["conversation_id"] = run.conversation_id
        return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"

    yield chunk({"role": "assistant", "content": ""})
    async for event in generation.events(run):
        if isinstance(event, generation.AnswerChunk):
            yield chunk({"content": event.answer})
        elif isinstance(event, generation.GenerationFailed):
            error = {
                "message": event.message,
                "type": "api_error",
                "param": None,
                "code": event.code,
            }
            yield b"data: " + json.dumps({"error": error}).encode() + b"\n\n"
            break
        elif isinstance(event, generation.MessageEnd):
            usage = _usage(event.metadata)
            if include_usage:
                yield chunk({}, finish="stop") + chunk(None, usage=usage)
            else:  # the last chunk carries the usage
                yield chunk({}, finish="stop", usage=usage)
            break
    yield b"data: [DONE]\n\n"
