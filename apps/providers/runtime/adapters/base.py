"""The adapter contract: one class per wire protocol, not per vendor.

An adapter turns our types (runtime/types.py) into one protocol's HTTP requests and its
responses (JSON, SSE, NDJSON) back into our types, and maps its errors onto
runtime/errors.py. It holds no state of its own beyond the connection it is given, so one
adapter instance serves one call.

What more than one protocol needs lives here, below the class, so that protocol modules
never import each other; each keeps only its own wire mapping."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import unquote_to_bytes

import httpx
import orjson

from apps.providers.runtime import errors
from apps.providers.runtime.pacing import wait_to_read
from apps.providers.runtime.types import (
    EmbeddingResult,
    Finish,
    LLMEvent,
    LLMRequest,
    LLMResult,
    ModerationResult,
    RemoteModel,
    RerankItem,
    RerankResult,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
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
    # Statuses a provider uses in its own sense, as the ones map_status knows.
    status_aliases: ClassVar[dict[int, int]] = {}

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

    def bearer_headers(self) -> dict[str, str]:
        """`Authorization: Bearer <key>`, or no header at all for a keyless server."""
        return {"Authorization": f"Bearer {self.conn.api_key}"} if self.conn.api_key else {}

    async def check(self, response: httpx.Response) -> httpx.Response:
        """Raise the mapped error for a non-2xx response (reading the body if streamed)."""
        if response.is_success:
            return response
        body = await response.aread()
        raise self.error_for(response.status_code, body, response.headers)

    def error_for(self, status: int, body: bytes, headers: httpx.Headers) -> errors.InvokeError:
        """Our error for an error reply; protocols whose bodies say more override this."""
        mapped = map_status(
            self.status_aliases.get(status, status), self.error_message(body), headers
        )
        mapped.upstream_status = status
        return mapped

    async def send(self, method: str, path: str, **kwargs) -> httpx.Response:
        with self._transport_errors():
            response = await self.http.request(method, self.url(path), **kwargs)
        return await self.check(response)

    async def open_stream(self, method: str, path: str, **kwargs) -> httpx.Response:
        """Start a streamed request; the caller must `aclose()` the response."""
        with self._transport_errors():
            request = self.http.build_request(method, self.url(path), **kwargs)
            response = await self.http.send(request, stream=True)
        try:
            return await self.check(response)
        except BaseException:
            await response.aclose()
            raise

    @contextmanager
    def _transport_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException as exc:
            raise errors.InvokeConnectionError(f"{self.conn.provider} timed out") from exc
        except httpx.TransportError as exc:
            raise errors.InvokeConnectionError(
                f"Could not reach {self.conn.provider}", provider_message=str(exc)
            ) from exc


# --- Errors ---------------------------------------------------------------------------------


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


# --- Reading replies --------------------------------------------------------------------------


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """Server-Sent Events as (event, data) pairs; `event` is "message" when unnamed.

    A stream cut off mid-way raises InvokeConnectionError, never a silent end."""
    event, data = "message", []
    with stream_errors():
        async for line in _lines(response):
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


async def _lines(response: httpx.Response) -> AsyncIterator[str]:
    """The body's lines (ended by LF, CRLF or CR), split from the bytes and decoded one
    by one: what httpx's aiter_lines does, at a fraction of the cost per network read,
    which on a stream of tokens is the cost per token."""
    pending = b""
    async for chunk in response.aiter_bytes():
        pending += chunk
        # A CR at the very end may be the first half of a CRLF: it waits for more.
        end = len(pending) - 1 if pending.endswith(b"\r") else len(pending)
        cut = max(pending.rfind(b"\n", 0, end), pending.rfind(b"\r", 0, end)) + 1
        if cut:
            for raw in pending[:cut].splitlines():
                yield raw.decode("utf-8", "replace")
            pending = pending[cut:]
        await wait_to_read()
    for raw in pending.splitlines():
        yield raw.decode("utf-8", "replace")


async def ndjson_lines(response: httpx.Response) -> AsyncIterator[dict]:
    """One JSON object per line (Ollama); a broken stream raises InvokeConnectionError."""
    with stream_errors():
        async for line in response.aiter_lines():
            if line.strip():
                yield event_json(line)


@contextmanager
def stream_errors(what: str = "stream") -> Iterator[None]:
    """A response body that breaks off while we read it is a connection error."""
    try:
        yield
    except (httpx.TransportError, httpx.StreamError) as exc:
        raise errors.InvokeConnectionError(
            f"The provider's {what} broke off", provider_message=str(exc)
        ) from exc


def event_json(data: str) -> dict:
    """One stream event's JSON object ({} for any other JSON value); a malformed one means
    the stream is broken."""
    try:
        value = orjson.loads(data)
    except ValueError:
        try:  # what orjson refuses but Python reads (NaN, huge integers)
            value = json.loads(data)
        except ValueError as exc:
            raise errors.InvokeConnectionError(
                "The provider sent a malformed event", provider_message=data[:200]
            ) from exc
    return value if isinstance(value, dict) else {}


def read_json(response: httpx.Response) -> dict:
    """A whole reply's JSON object; anything else is the provider's fault, not the caller's."""
    try:
        data = response.json()
    except ValueError as exc:
        raise errors.InvokeConnectionError(
            "The provider sent an unreadable reply", provider_message=response.text[:200]
        ) from exc
    if not isinstance(data, dict):
        raise errors.InvokeConnectionError("The provider sent an unexpected reply")
    return data


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


def tool_finish(reason: str, *, called_tools: bool) -> str:
    """Several protocols say "stop" after a tool call; callers act on "tool_calls"."""
    return "tool_calls" if called_tools and reason == "stop" else reason


def vectors_for(texts: list[str], vectors: list) -> list:
    """`vectors`, once it is sure there is one for each text."""
    if len(vectors) != len(texts):
        raise errors.InvokeConnectionError(
            f"The provider returned {len(vectors)} vectors for {len(texts)} texts"
        )
    return vectors


def ranked(
    scores: Iterable[tuple[int, float]], documents: list[str], top_n: int | None
) -> list[RerankItem]:
    """(index, score) pairs as RerankItems, best first, cut to top_n, each with the text of
    its input document (whatever the service echoes)."""
    items = [RerankItem(index=i, score=float(score), text=documents[i]) for i, score in scores]
    items.sort(key=lambda item: -item.score)
    return items[:top_n] if top_n is not None else items


# --- Request pieces several protocols share -----------------------------------------------


def json_schema_spec(value: dict | str | None) -> dict:
    """The json_schema parameter as OpenAI's wrapper {"name", "schema", "strict"?}. Accepts
    that wrapper or a bare JSON schema, as a dict or as JSON text (a form field)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise errors.InvokeBadRequestError("The JSON schema is not valid JSON") from exc
    if not isinstance(value, dict) or not value:
        raise errors.InvokeBadRequestError("Structured output needs a JSON schema")
    if isinstance(value.get("schema"), dict):
        return {"name": "response", **value}
    return {"name": "response", "schema": value}


def requested_format(parameters: dict) -> tuple[str, dict | None]:
    """What response_format asks for: ("text" | "json_object" | "json_schema", schema).

    The bare schema (for "json_schema" only) comes from the `json_schema` parameter, or from
    response_format itself when that is already in OpenAI's shape."""
    kind, raw = parameters.get("response_format") or "text", parameters.get("json_schema")
    if isinstance(kind, dict):
        kind, raw = kind.get("type") or "text", kind.get("json_schema", raw)
    if kind != "json_schema":
        return kind, None
    return kind, json_schema_spec(raw)["schema"]


def function_tool(tool: ToolSpec) -> dict:
    """A tool in OpenAI's function shape, which Ollama and Cohere take too."""
    function: dict = {"name": tool.name, "parameters": tool.parameters}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def arguments_object(arguments: str) -> dict:
    """A tool call's arguments as the object most protocols want back, where we keep the
    model's text; arguments the model garbled become {}."""
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def new_call_id() -> str:
    """An id for a tool call the protocol sent without one (our tool turns need one)."""
    return f"call_{uuid.uuid4().hex[:24]}"


def data_url_parts(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a data: URL; None for any other URL."""
    if not url.startswith("data:"):
        return None
    header, _, payload = url[5:].partition(",")
    media_type, *params = header.split(";")
    if "base64" in params:
        data = "".join(payload.split())
    else:
        data = base64.b64encode(unquote_to_bytes(payload)).decode()
    return media_type or "text/plain", data


async def fetch_image(http: httpx.AsyncClient, url: str, max_bytes: int) -> tuple[str, str]:
    """(media type, base64 data) of a linked image, for protocols that only take images
    inline. Fetched through the connection's (SSRF-guarded) client, at most `max_bytes`."""
    body = bytearray()
    try:
        async with http.stream("GET", url) as response:
            if not response.is_success:
                raise errors.InvokeBadRequestError(
                    f"Could not fetch the image at {url} ({response.status_code})"
                )
            media_type = response.headers.get("content-type", "").split(";")[0].strip()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise errors.InvokeBadRequestError(
                        f"The image at {url} is over {max_bytes // 2**20} MB"
                    )
    except httpx.HTTPError as exc:
        raise errors.InvokeBadRequestError(
            f"Could not fetch the image at {url}", provider_message=str(exc)
        ) from exc
    return media_type, base64.b64encode(bytes(body)).decode()
