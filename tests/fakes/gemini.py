"""A fake Google Gemini API (generativelanguage v1beta).

POST /v1beta/models/{model}:generateContent, :streamGenerateContent (alt=sse: `data:` frames
separated by CRLF CRLF, as Google sends them; without alt=sse a JSON array),
:batchEmbedContents, and GET /v1beta/models. The key goes in `x-goog-api-key` or `?key=`.
It refuses what the real API refuses and an adapter could get wrong: a wrong key (400
API_KEY_INVALID), no key (403), unknown models (404), roles other than user/model, unknown
Schema keywords, OBJECT parameters without properties, more than 100 embedding requests."""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import re
from collections import deque
from dataclasses import dataclass, field

from tests.fakes.rerankers import fake_vector
from tests.fakes.server import FakeProvider, Reply, Request

API_KEY = "AIza-fake-key"
SCHEMA_FIELDS = {
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
TYPES = {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"}
GENERATION_CONFIG_FIELDS = {
    "temperature",
    "topP",
    "topK",
    "maxOutputTokens",
    "stopSequences",
    "candidateCount",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseMimeType",
    "responseSchema",
    "thinkingConfig",
}
PART_FIELDS = {"text", "inlineData", "fileData", "functionCall", "functionResponse"}
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@dataclass
class Turn:
    """What the fake model answers next."""

    text: str = "Hello from the fake Gemini."
    function_calls: list[tuple[str, dict]] = field(default_factory=list)  # (name, args)
    finish_reason: str = "STOP"
    prompt_tokens: int = 17
    output_tokens: int = 8
    thoughts_tokens: int = 0
    block_reason: str | None = None  # the prompt is blocked: no candidates at all
    error: tuple[int, str] | None = None  # stream only: an error frame after the first chunk
    drop_after: int | None = None  # stream only: cut the connection after this many frames


def error_reply(
    status: int, message: str, *, details: list | None = None, headers: dict | None = None
) -> Reply:
    error = {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN")}
    if details:
        error["details"] = details
    return Reply.json({"error": error}, status=status, headers=headers)


def rate_limit_reply(message: str, retry_seconds: int) -> Reply:
    details = [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_seconds}s"}
    ]
    return error_reply(429, message, details=details)


class BadRequest(Exception):
    pass


class FakeGemini(FakeProvider):
    def __init__(self, api_key: str = API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.turns: deque[Turn] = deque()
        self._ids = itertools.count(1)
        self.reset()
        base = r"/v1beta/models/[^/:]+"
        self.route("POST", base + ":generateContent", self._generate)
        self.route("POST", base + ":streamGenerateContent", self._generate)
        self.route("POST", base + ":batchEmbedContents", self._embed)
        self.route("GET", "/v1beta/models", self._list_models)

    def reset(self) -> None:
        """Forget scripted turns, queued replies and seen requests (one server, many tests)."""
        self.models = [
            _model("gemini-2.5-flash", ["generateContent", "countTokens"], 1_048_576),
            _model("gemini-2.5-pro", ["generateContent", "countTokens"], 1_048_576),
            _model("text-embedding-004", ["embedContent"], 2048),
            _model("gemini-embedding-001", ["embedContent", "countTextTokens"], 2048),
            _model("imagen-3.0-generate-002", ["predict"], 480),
        ]
        self.turns.clear()
        self.requests.clear()
        self._queued.clear()

    def say(self, *turns: Turn) -> None:
        self.turns.extend(turns)

    # --- shared checks -----------------------------------------------------------
    def _refuse(self, request: Request, method: str | None = None) -> Reply | None:
        key = request.headers.get("x-goog-api-key") or request.query.get("key", [""])[0]
        if not key:
            return error_reply(
                403,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API key or other form of API consumer identity to call "
                "this API.",
            )
        if key != self.api_key:
            details = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ]
            return error_reply(
                400, "API key not valid. Please pass a valid API key.", details=details
            )
        if method is None:
            return None
        model = _model_in(request.path)
        known = {m["name"].removeprefix("models/"): m for m in self.models}
        if method not in known.get(model, {}).get("supportedGenerationMethods", []):
            return error_reply(
                404,
                f"models/{model} is not found for API version v1beta, or is not supported for "
                f"{method}. Call ListModels to see the list of available models and their "
                "supported methods.",
            )
        return None

    # --- generateContent / streamGenerateContent ----------------------------------
    def _generate(self, request: Request) -> Reply:
        refused = self._refuse(request, "generateContent")
        if refused:
            return refused
        body = request.json()
        try:
            _validate_generate(body)
        except BadRequest as exc:
            return error_reply(400, str(exc))
        turn = self.turns.popleft() if self.turns else Turn()
        chunks = self._chunks(turn, _model_in(request.path))
        if not request.path.endswith(":streamGenerateContent"):
            return Reply.json(_merge(chunks))
        if request.query.get("alt") != ["sse"]:
            return Reply.json(chunks)  # without alt=sse the stream is one JSON array
        frames = [f"data: {json.dumps(chunk)}\r\n\r\n".encode() for chunk in chunks]
        if turn.error:
            status, message = turn.error
            error = {"code": status, "message": message, "status": STATUS_NAMES.get(status)}
            frames = frames[:1] + [f"data: {json.dumps({'error': error})}\r\n\r\n".encode()]
        return Reply(
            body=iter(frames),
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
            drop_after=turn.drop_after,
        )

    def _chunks(self, turn: Turn, model: str) -> list[dict]:
        """The answer as stream chunks: text in pieces, function calls whole, the finish
        reason and full usage on the last one."""
        response_id = f"fake-response-{next(self._ids)}"
        usage = {"promptTokenCount": turn.prompt_tokens}
        meta = {"modelVersion": model, "responseId": response_id}
        if turn.block_reason:
            feedback = {"blockReason": turn.block_reason}
            return [{"promptFeedback": feedback, "usageMetadata": usage | _total(turn), **meta}]
        part_groups = [[{"text": piece}] for piece in _pieces(turn.text)]
        if turn.function_calls:
            calls = [{"functionCall": {"name": n, "args": a}} for n, a in turn.function_calls]
            part_groups.append(calls)
        chunks = []
        for parts in part_groups or [[]]:
            candidate: dict = {"index": 0}
            if parts:
                candidate["content"] = {"parts": parts, "role": "model"}
            chunks.append({"candidates": [candidate], "usageMetadata": dict(usage), **meta})
        chunks[-1]["candidates"][0]["finishReason"] = turn.finish_reason
        chunks[-1]["usageMetadata"] = usage | _total(turn)
        return chunks

    # --- batchEmbedContents ------------------------------------------------------
    def _embed(self, request: Request) -> Reply:
        refused = self._refuse(request, "embedContent")
        if refused:
            return refused
        model = f"models/{_model_in(request.path)}"
        requests = (request.json() or {}).get("requests") or []
        if not requests:
            return error_reply(400, "* BatchEmbedContentsRequest.requests: must not be empty\n")
        if len(requests) > 100:
            return error_reply(
                400,
                "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n",
            )
        for n, item in enumerate(requests):
            if item.get("model") != model:
                return error_reply(
                    400,
                    f"Model name in requests[{n}] ({item.get('model')}) does not match the "
                    f"model in the URL ({model}).",
                )
        texts = ["".join(p.get("text", "") for p in r["content"]["parts"]) for r in requests]
        return Reply.json({"embeddings": [{"values": fake_vector(text)} for text in texts]})

    # --- models ------------------------------------------------------------------
    def _list_models(self, request: Request) -> Reply:
        refused = self._refuse(request)
        if refused:
            return refused
        size = int(request.query.get("pageSize", ["50"])[0])
        start = int(request.query.get("pageToken", ["0"])[0])
        page: dict = {"models": self.models[start : start + size]}
        if start + size < len(self.models):
            page["nextPageToken"] = str(start + size)
        return Reply.json(page)


# --- Wire pieces ------------------------------------------------------------------------


def _model(name: str, methods: list[str], input_limit: int) -> dict:
    return {
        "name": f"models/{name}",
        "version": "001",
        "displayName": name.replace("-", " ").title(),
        "inputTokenLimit": input_limit,
        "outputTokenLimit": 8192,
        "supportedGenerationMethods": methods,
    }


def _model_in(path: str) -> str:
    return path.split("/models/", 1)[1].split(":", 1)[0]


def _total(turn: Turn) -> dict:
    total = {
        "candidatesTokenCount": turn.output_tokens,
        "totalTokenCount": turn.prompt_tokens + turn.output_tokens + turn.thoughts_tokens,
    }
    if turn.thoughts_tokens:
        total["thoughtsTokenCount"] = turn.thoughts_tokens
    return total


def _pieces(text: str) -> list[str]:
    words = re.findall(r"\s*\S+", text)
    return ["".join(words[i : i + 2]) for i in range(0, len(words), 2)]


def _merge(chunks: list[dict]) -> dict:
    """The blocking answer: the stream's chunks as one response."""
    last = dict(chunks[-1])
    if "candidates" not in last:
        return last
    parts = [p for c in chunks for p in c["candidates"][0].get("content", {}).get("parts", [])]
    texts = "".join(p["text"] for p in parts if "text" in p)
    merged = ([{"text": texts}] if texts else []) + [p for p in parts if "text" not in p]
    candidate = {**last["candidates"][0]}
    if merged:
        candidate["content"] = {"parts": merged, "role": "model"}
    last["candidates"] = [candidate]
    return last


# --- Request checks ---------------------------------------------------------------------


def _validate_generate(body: dict) -> None:
    contents = body.get("contents")
    if not contents:
        raise BadRequest("* GenerateContentRequest.contents: contents is not specified\n")
    for n, content in enumerate(contents):
        if content.get("role") not in ("user", "model"):
            raise BadRequest(
                f"Please use a valid role: user, model. (contents[{n}].role: "
                f"{content.get('role')!r})"
            )
        _validate_parts(f"contents[{n}]", content.get("parts"))
    if "systemInstruction" in body:
        _validate_parts("system_instruction", body["systemInstruction"].get("parts"))
    for t, tool in enumerate(body.get("tools") or []):
        for d, declaration in enumerate(tool.get("functionDeclarations") or []):
            where = f"tools[{t}].function_declarations[{d}]"
            if not declaration.get("name"):
                raise BadRequest(f"* GenerateContentRequest.{where}.name: Name is required\n")
            if "parameters" in declaration:
                _validate_schema(f"{where}.parameters", declaration["parameters"], tool=True)
    config = body.get("generationConfig") or {}
    for key in config:
        if key not in GENERATION_CONFIG_FIELDS:
            raise BadRequest(
                f'Invalid JSON payload received. Unknown name "{key}" at '
                "'generation_config': Cannot find field."
            )
    if "responseSchema" in config:
        if config.get("responseMimeType") != "application/json":
            raise BadRequest(
                "* GenerateContentRequest.generation_config.response_mime_type: "
                "response_mime_type must be application/json when response_schema is set\n"
            )
        _validate_schema("generation_config.response_schema", config["responseSchema"])


def _validate_parts(where: str, parts: list | None) -> None:
    if not parts:
        raise BadRequest(
            f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.\n"
        )
    for p, part in enumerate(parts):
        data = [key for key in part if key in PART_FIELDS]
        if len(data) != 1:
            raise BadRequest(
                f"* GenerateContentRequest.{where}.parts[{p}].data: required oneof field "
                "'data' must have one initialized field\n"
            )
        inline = part.get("inlineData")
        if inline is not None:
            if not inline.get("mimeType"):
                raise BadRequest(f"* {where}.parts[{p}].inline_data.mime_type: required")
            try:
                base64.b64decode(inline.get("data", ""), validate=True)
            except binascii.Error as exc:
                raise BadRequest(
                    f"Invalid value at '{where}.parts[{p}].inline_data.data' (TYPE_BYTES), "
                    "Base64 decoding failed"
                ) from exc
        if "functionResponse" in part and not isinstance(
            part["functionResponse"].get("response"), dict
        ):
            raise BadRequest(f"* {where}.parts[{p}].function_response.response: must be an object")


def _validate_schema(where: str, schema: dict, *, tool: bool = False) -> None:
    for key in schema:
        if key not in SCHEMA_FIELDS:
            raise BadRequest(
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': "
                "Cannot find field."
            )
    kind = str(schema.get("type", "")).upper()
    if "type" in schema and kind not in TYPES:
        raise BadRequest(
            f"Invalid value at '{where}.type' (type.googleapis.com/Type), {schema['type']!r}"
        )
    if tool and kind == "OBJECT" and not schema.get("properties"):
        raise BadRequest(
            f"* GenerateContentRequest.{where}.properties: should be non-empty for OBJECT type\n"
        )
    for name, sub in (schema.get("properties") or {}).items():
        _validate_schema(f"{where}.properties[{name}].value", sub, tool=tool)
    if "items" in schema:
        _validate_schema(f"{where}.items", schema["items"], tool=tool)
