"""The adapter contract: one class per wire protocol, not per vendor.

An adapter turns our types (runtime/types.py) into one protocol's HTTP requests and its
responses (JSON, SSE, NDJSON) back into our types, and maps its errors onto
runtime/errors.py. It holds no state of its own beyond the connection it is given, so one
adapter instance serves one call."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import ClassVar

import httpx

from apps.providers.runtime import errors
from apps.providers.runtime.types import (
    EmbeddingResult,
    Finish,
    LLMEvent,
    LLMRequest,
    LLMResult,
    ModerationResult,
    RemoteModel,
    RerankResult,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    UsageEvent,
)


@dataclass
class Connection:
    """Where and how to reach the provider for one call."""

    base_url: str  # without a trailing slash
    api_key: str | None
    credentials: dict = field(default_factory=dict)  # every credential field, decrypted
    http: httpx.AsyncClient | None = None  # pooled, SSRF-guarded; see runtime/http.py
    provider: str = ""


class Adapter:
    protocol: ClassVar[str]
    # Most inputs one embedding request may carry; callers batch to this.
    max_embedding_batch: ClassVar[int] = 96

    def __init__(self, connection: Connection):
        self.conn = connection
        if connection.http is None:
            raise ValueError("an adapter needs an HTTP client")
        self.http = connection.http

    # --- LLM ---------------------------------------------------------------------
    def stream_llm(self, request: LLMRequest) -> AsyncIterator[LLMEvent]:
        raise errors.InvokeBadRequestError(f"{self.protocol} does not serve chat models")

    async def invoke_llm(self, request: LLMRequest) -> LLMResult:
        """Blocking call. Protocols with a non-streaming endpoint override this."""
        return await collect(request.model, self.stream_llm(request))

    # --- Other model types -----------------------------------------------------------
    async def embed(
        self, model: str, texts: list[str], *, input_type: str = "document"
    ) -> EmbeddingResult:
        raise errors.InvokeBadRequestError(f"{self.protocol} does not serve embedding models")

    async def rerank(
        self, model: str, query: str, documents: list[str], *, top_n: int | None = None
    ) -> RerankResult:
        raise errors.InvokeBadRequestError(f"{self.protocol} does not serve rerank models")

    def text_to_speech(self, model: str, text: str, *, voice: str) -> AsyncIterator[bytes]:
        raise errors.InvokeBadRequestError(f"{self.protocol} does not serve speech models")

    async def speech_to_text(self, model: str, audio: bytes, *, filename: str) -> str:
        raise errors.InvokeBadRequestError(f"{self.protocol} does not serve transcription")

    async def moderate(self, model: str, text: str) -> ModerationResult:
        raise errors.InvokeBadRequestError(f"{self.protocol} does not serve moderation")

    async def list_models(self) -> list[RemoteModel]:
        raise errors.InvokeBadRequestError(f"{self.protocol} cannot list models")

    # --- Shared plumbing -----------------------------------------------------------
    def url(self, path: str) -> str:
        return f"{self.conn.base_url.rstrip('/')}/{path.lstrip('/')}"

    def error_message(self, body: bytes) -> str:
        """The provider's own words from an error body; protocols override for their shape."""
        try:
            data = json.loads(body)
        except ValueError:
            return body.decode(errors="replace")[:500]
        if isinstance(data, dict):
            error = data.get("error", data)
            if isinstance(error, dict):
                return str(error.get("message") or error.get("detail") or error)[:500]
            return str(data.get("message") or data.get("detail") or error)[:500]
        return str(data)[:500]

    async def check(self, response: httpx.Response) -> httpx.Response:
        """Raise the mapped error for a non-2xx response (reading the body if streamed)."""
        if response.is_success:
            return response
        body = await response.aread()
        raise map_status(response.status_code, self.error_message(body), response.headers)

    async def send(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = await self.http.request(method, self.url(path), **kwargs)
        except httpx.TimeoutException as exc:
            raise errors.InvokeConnectionError(f"{self.conn.provider} timed out") from exc
        except httpx.TransportError as exc:
            raise errors.InvokeConnectionError(
                f"Could not reach {self.conn.provider}", provider_message=str(exc)
            ) from exc
        return await self.check(response)

    async def open_stream(self, method: str, path: str, **kwargs) -> httpx.Response:
        """Start a streamed request; the caller must `aclose()` the response."""
        try:
            request = self.http.build_request(method, self.url(path), **kwargs)
            response = await self.http.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise errors.InvokeConnectionError(f"{self.conn.provider} timed out") from exc
        except httpx.TransportError as exc:
            raise errors.InvokeConnectionError(
                f"Could not reach {self.conn.provider}", provider_message=str(exc)
            ) from exc
        try:
            return await self.check(response)
        except BaseException:
            await response.aclose()
            raise


def map_status(status: int, message: str, headers: httpx.Headers | dict | None = None):
    kwargs = {"provider_message": message, "upstream_status": status}
    if status in (401, 403):
        return errors.InvokeAuthorizationError("The provider refused the credentials", **kwargs)
    if status == 429:
        retry_after = _retry_after((headers or {}).get("retry-after"))
        return errors.InvokeRateLimitError(
            "The provider is rate limiting", retry_after=retry_after, **kwargs
        )
    if status >= 500:
        return errors.InvokeServerUnavailableError("The provider is unavailable", **kwargs)
    return errors.InvokeBadRequestError("The provider refused the request", **kwargs)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """Server-Sent Events as (event, data) pairs; `event` is "message" when unnamed.

    A stream cut off mid-way raises InvokeConnectionError, never a silent end."""
    event, data = "message", []
    try:
        async for line in response.aiter_lines():
            if not line:
                if data:
                    yield event, "\n".join(data)
                event, data = "message", []
            elif line.startswith(":"):
                continue
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            yield event, "\n".join(data)
    except (httpx.TransportError, httpx.StreamError) as exc:
        raise errors.InvokeConnectionError(
            "The provider's stream broke off", provider_message=str(exc)
        ) from exc


async def ndjson_lines(response: httpx.Response) -> AsyncIterator[dict]:
    """One JSON object per line (Ollama); a broken stream raises InvokeConnectionError."""
    try:
        async for line in response.aiter_lines():
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise errors.InvokeConnectionError(
                        "The provider sent a malformed line", provider_message=line[:200]
                    ) from exc
    except (httpx.TransportError, httpx.StreamError) as exc:
        raise errors.InvokeConnectionError(
            "The provider's stream broke off", provider_message=str(exc)
        ) from exc


async def collect(model: str, events: AsyncIterator[LLMEvent]) -> LLMResult:
    """Fold a stream of events into one result (tool-call pieces joined by index)."""
    result = LLMResult(model=model)
    text: list[str] = []
    calls: dict[int, ToolCall] = {}
    async for event in events:
        if isinstance(event, TextDelta):
            text.append(event.text)
        elif isinstance(event, ToolCallDelta):
            call = calls.setdefault(event.index, ToolCall(id="", name="", arguments=""))
            call.id = event.id or call.id
            call.name = event.name or call.name
            call.arguments += event.arguments
        elif isinstance(event, UsageEvent):
            result.usage = event.usage
        elif isinstance(event, Finish):
            result.finish_reason = event.reason
    result.text = "".join(text)
    result.tool_calls = [calls[i] for i in sorted(calls)]
    return result
