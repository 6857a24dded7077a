"""A raw-ASGI fast path for `POST /v1/chat/completions` with a gateway key.

The gateway's hottest call is also its simplest: a bearer key, a JSON body, a stream
back. Django's request/response machinery (request objects, signals whose receivers hop
to a thread, middleware, ninja's routing) costs more per request than the relay itself,
so this path answers it straight from ASGI, with the same behaviour as the view in
`gateway.py`: the key is checked the same way (the cache first, the database in a worker
thread), the body is validated by the same `chat_call`, errors have the same OpenAI
bodies and statuses, the stream is the same `chat_stream`, and responses carry the same
X-Request-ID and Content-Security-Policy headers as the API middleware adds.

Whatever it does not handle goes on to Django untouched: other paths and methods, app
keys (`app-…`, answered by a registered app chat handler), requests without a bearer
token."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from contextlib import aclosing

import orjson
from django.conf import settings

from apps.core.errors import DomainError
from apps.core.logging import request_id_var
from apps.core.middleware import CONTENT_SECURITY_POLICY
from apps.core.offload import offload
from apps.providers.gateway import (
    APP_KEY_PREFIX,
    STREAM_HEADERS,
    chat_call,
    chat_completion,
    chat_stream,
    parse_body,
)
from apps.providers.runtime import errors
from apps.tenants.models import ApiKeyScope
from apps.tenants.services import api_key_authenticate_cached, api_key_from_cache

logger = logging.getLogger(__name__)

PATH = "/v1/chat/completions"
_SAFE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")
_CSP = (b"content-security-policy", CONTENT_SECURITY_POLICY.encode())
_STREAM_HEADERS = [
    (b"content-type", b"text/event-stream"),
    *((name.lower().encode(), value.encode()) for name, value in STREAM_HEADERS.items()),
]


class _ClientGone(Exception):
    pass


def with_fast_chat_completions(app):
    """Wrap the HTTP ASGI app: gateway-key chat completions are answered here."""

    async def router(scope, receive, send):
        if scope["path"] == PATH and scope["method"] == "POST":
            token = _bearer_token(scope["headers"])
            if token is not None and not token.startswith(APP_KEY_PREFIX):
                await _chat_completions(scope, receive, send, token)
                return
        await app(scope, receive, send)

    return router


def _bearer_token(headers) -> str | None:
    """The token as ninja's HttpBearer reads it, or None to leave the request to Django."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token if scheme.lower() == "bearer" and token else None
    return None


async def _chat_completions(scope, receive, send, token: str) -> None:
    request_id = _request_id(scope["headers"])
    request_id_var.set(request_id)
    common = [(b"x-request-id", request_id.encode()), _CSP]
    try:
        raw = await _read_body(receive)
    except _ClientGone:
        return
    key = api_key_from_cache(raw=token, scope=ApiKeyScope.GATEWAY)
    if key is None:
        key = await offload(api_key_authenticate_cached)(raw=token, scope=ApiKeyScope.GATEWAY)
    if key is None:
        await _error(send, common, 401, "Invalid gateway API key.", "invalid_api_key")
        return
    try:
        if raw is None:
            raise DomainError("The request body is too large.", code="request_too_large")
        call = chat_call(workspace=key.workspace, body=parse_body(raw))
    except DomainError as exc:
        await _domain_error(send, common, exc)
        return
    # Like Django's handler: a client that hangs up cancels the work done for it (the
    # upstream stream is closed and its usage recorded as cancelled).
    watcher = asyncio.ensure_future(_until_disconnect(receive))
    task = asyncio.current_task()
    watcher.add_done_callback(lambda done: done.cancelled() or task.cancel())
    try:
        if call.stream:
            await _stream(send, common, call)
        else:
            await _complete(send, common, call)
    except asyncio.CancelledError:
        if not watcher.done() or watcher.cancelled():
            raise  # cancelled by the server, not by the client going away
    finally:
        watcher.cancel()


async def _stream(send, common, call) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": _STREAM_HEADERS + common})
    try:
        async with aclosing(chat_stream(call)) as frames:
            async for data in frames:
                await send({"type": "http.response.body", "body": data, "more_body": True})
    except Exception:  # a bug, not a model failure (those arrive as error frames)
        logger.exception("The chat completion stream failed")  # the client sees no [DONE]
    await send({"type": "http.response.body", "body": b""})


async def _complete(send, common, call) -> None:
    try:
        body = await chat_completion(call)
    except DomainError as exc:
        await _domain_error(send, common, exc)
        return
    except Exception:
        logger.exception("The chat completion failed")
        await _error(
            send, common, 500, "Something went wrong on our side.", "internal_error", "api_error"
        )
        return
    await _respond(send, common, 200, orjson.dumps(body), b"application/json; charset=utf-8")


async def _read_body(receive) -> bytes | None:
    """The whole request body; None once it passes DATA_UPLOAD_MAX_MEMORY_SIZE."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is None or size <= limit:
            parts.append(chunk)
        if not message.get("more_body", False):
            break
    if limit is not None and size > limit:
        return None
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def _until_disconnect(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _request_id(headers) -> str:
    for name, value in headers:
        if name == b"x-request-id" and _SAFE_REQUEST_ID.match(value):
            return value.decode()
    return uuid.uuid4().hex


async def _domain_error(send, common, exc: DomainError) -> None:
    if isinstance(exc, errors.InvokeError):
        kind = "rate_limit_error" if isinstance(exc, errors.InvokeRateLimitError) else "api_error"
        await _error(send, common, exc.status, str(exc), exc.code, kind)
    else:
        await _error(send, common, exc.status, exc.message, exc.code)


async def _error(send, common, status, message, code, kind="invalid_request_error") -> None:
    logger.warning("%s %s: %s", status, PATH, message)
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    await _respond(send, common, status, orjson.dumps(body), b"application/json")


async def _respond(send, common, status: int, body: bytes, content_type: bytes) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *common,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
