"""A fake OpenAI API, and Azure OpenAI's variant of it, on a loopback port.

It answers deterministically from the input: the chat reply is "You said: <last message>"
split into word-sized tokens, a question about the weather with a tool on offer becomes a
tool call, embeddings are hash-seeded unit vectors. It honours max_tokens, stop, tools,
response_format and stream_options the way OpenAI does, and sends OpenAI's JSON shapes,
SSE framing and error bodies.

The deterministic "model" (`Prompt`, `think`, `fake_vector`, `fake_speech`) is shared with
the other fakes (tests/fakes/ollama.py)."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
import random
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser

from tests.fakes.server import FakeProvider, Handler, Reply, Request
from tests.fakes.word_vectors import topic_vector, word_vector

CREATED = 1_715_367_049  # a fixed Unix time, so replies are byte-for-byte repeatable
DEFAULT_MODELS = (
    "gpt-4o-mini",
    "gpt-4o",
    "text-embedding-3-small",
    "tts-1",
    "whisper-1",
    "omni-moderation-latest",
)
MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
# Words the fake moderation model flags, and under which category.
FLAGGED_WORDS = {"kill": "violence", "hate": "hate", "hurt": "violence"}


# --- The deterministic "model" ---------------------------------------------------------

_TOKEN = re.compile(r"\s*\S+")


def tokenize(text: str) -> list[str]:
    """Word-sized tokens that keep their leading space, like BPE tokens do."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    return len(tokenize(text))


@dataclass
class Prompt:
    """What the fake model reads from a chat request, whatever the protocol."""

    last_text: str
    last_role: str = "user"
    images: int = 0  # images in the last message
    prompt_tokens: int = 0
    tool_names: list[str] = field(default_factory=list)
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    json_mode: bool = False
    schema: dict | None = None


@dataclass
class Answer:
    text: str = ""
    tool_name: str | None = None
    tool_arguments: str = ""  # JSON text
    finish_reason: str = "stop"  # stop, length, tool_calls

    @property
    def tokens(self) -> list[str]:
        return tokenize(self.text)

    @property
    def completion_tokens(self) -> int:
        return count_tokens(self.text) + count_tokens(self.tool_arguments)


def think(prompt: Prompt) -> Answer:
    if prompt.last_role == "tool":
        text = f"The tool said: {prompt.last_text}"
    elif prompt.tool_names and "weather" in prompt.last_text.lower():
        name = next((n for n in prompt.tool_names if "weather" in n), prompt.tool_names[0])
        arguments = json.dumps({"location": _place(prompt.last_text)})
        return Answer(tool_name=name, tool_arguments=arguments, finish_reason="tool_calls")
    else:
        text = f"You said: {prompt.last_text}"
        if prompt.images:
            text += f" [{prompt.images} image(s)]"
    if prompt.schema is not None:
        text = json.dumps(sample_for_schema(prompt.schema, text))
    elif prompt.json_mode:
        text = json.dumps({"reply": text})
    answer = Answer(text=text)
    cuts = [text.find(s) for s in prompt.stop if s and s in text]
    if cuts:
        answer.text = text[: min(cuts)]
    tokens = answer.tokens
    if prompt.max_tokens is not None and len(tokens) > prompt.max_tokens:
        answer.text = "".join(tokens[: prompt.max_tokens])
        answer.finish_reason = "length"
    return answer


def _place(text: str) -> str:
    match = re.search(r"\bin ([A-Z][\w-]*(?: [A-Z][\w-]*)*)", text)
    return match.group(1) if match else "Paris"


def sample_for_schema(schema: dict, text: str):
    """A value of the schema's shape; strings carry the reply text."""
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {
            name: sample_for_schema(sub, text)
            for name, sub in (schema.get("properties") or {}).items()
        }
    if kind == "array":
        return [sample_for_schema(schema.get("items") or {}, text)]
    return {"integer": 0, "number": 0.0, "boolean": True, "null": None}.get(kind, text)


def fake_vector(text: str, dimension: int) -> list[float]:
    """A unit vector seeded by the text: the same text always gets the same vector."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    rng = random.Random(seed)
    vector = [rng.gauss(0.0, 1.0) for _ in range(dimension)]
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


_SPEECH_MARK = b"FAKE-MP3:"


def fake_speech(text: str) -> bytes:
    """Bytes that start like an MP3 file (an ID3 tag) and carry the text, so the fake's
    transcription hears back what its speech said. About 4 KB: several streamed chunks."""
    tag = b"ID3\x04\x00\x00\x00\x00\x00\x00"
    padding = hashlib.sha256(text.encode()).digest() * 128
    return tag + _SPEECH_MARK + text.encode() + b"\x00" + padding


def hear(audio: bytes) -> str:
    """What the fake transcription model hears: the text in fake speech, or UTF-8 text."""
    if _SPEECH_MARK in audio:
        return audio.split(_SPEECH_MARK, 1)[1].split(b"\x00", 1)[0].decode()
    return audio.decode(errors="replace").strip()


def multipart_fields(request: Request) -> dict[str, tuple[str | None, bytes]]:
    """A multipart/form-data body as {name: (filename, content)}."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return {}
    head = b"Content-Type: " + content_type.encode() + b"\r\n\r\n"
    message = BytesParser(policy=policy.HTTP).parsebytes(head + request.body)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


def json_reply(
    data, *, status: int = 200, headers: dict[str, str] | None = None, indent: int | None = None
) -> Reply:
    """JSON as the provider writes it: UTF-8, compact unless `indent` (OpenAI pretty-prints
    its plain JSON replies; Go servers such as Ollama write compact JSON)."""
    separators = None if indent else (",", ":")
    text = json.dumps(data, ensure_ascii=False, indent=indent, separators=separators)
    return Reply(
        status=status,
        body=text.encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def compact(data) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


# --- Error bodies ----------------------------------------------------------------------

_ERRORS = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: (
        "Incorrect API key provided: {key}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    ),
    404: (
        "The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    429: (
        "Rate limit reached for {model} in organization org-fake on requests per min (RPM): "
        "Limit 3, Used 3, Requested 1. Please try again in 20s. Visit "
        "https://platform.openai.com/account/rate-limits to learn more.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
}


def openai_error(
    status: int,
    message: str | None = None,
    *,
    error_type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    model: str = "gpt-4o-mini",
    key: str = "sk-wrong",
    headers: dict[str, str] | None = None,
) -> Reply:
    """A reply with the error body OpenAI sends for `status`."""
    template, default_type, default_code = _ERRORS.get(status, _ERRORS[500])
    body = {
        "error": {
            "message": message or template.format(model=model, key=_masked(key)),
            "type": error_type or default_type,
            "param": param,
            "code": code if code is not None else default_code,
        }
    }
    extra = {"Retry-After": "20", "x-ratelimit-remaining-requests": "0"} if status == 429 else {}
    return json_reply(body, status=status, headers={**extra, **(headers or {})}, indent=4)


def _masked(key: str) -> str:
    return key if len(key) <= 8 else f"{key[:3]}{'*' * (len(key) - 7)}{key[-4:]}"


_NO_KEY = {
    "message": "You didn't provide an API key. You need to provide your API key in an "
    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the "
    "password field (with blank username) if you're accessing the API from your browser and "
    "are prompted for a username. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys.",
    "type": "invalid_request_error",
}


class Refusal(Exception):
    """Raised inside a handler to answer with an error reply instead."""

    def __init__(self, reply: Reply):
        super().__init__(reply.status)
        self.reply = reply


# --- The fake server -------------------------------------------------------------------


class FakeOpenAI(FakeProvider):
    """OpenAI at `{url}/v1`. Steer it with the constructor, `queue(openai_error(429))`, and
    the stream knobs: `stream_usage=False` ignores stream_options (as some compatible
    servers do), `send_done=False` ends without `data: [DONE]`, `drop_after=n` cuts the
    connection after n chunks. `embeddings="words"` serves vectors where texts sharing
    words are close (tests/fakes/word_vectors.py) instead of unrelated hash-seeded ones;
    "topics" adds shared subject directions, closer to a real model's geometry."""

    def __init__(
        self,
        *,
        api_key: str | None = "sk-fake-key",
        models: tuple[str, ...] | list[str] = DEFAULT_MODELS,
        embedding_dimension: int = 8,
        chunk_delay: float = 0.0,
        stream_usage: bool = True,
        send_done: bool = True,
        drop_after: int | None = None,
        embeddings: str = "hash",
    ):
        super().__init__()
        if embeddings not in ("hash", "words", "topics"):
            raise ValueError("embeddings is 'hash' (unrelated), 'words' or 'topics' (related)")
        self.api_key = api_key  # None: a keyless local server that accepts anything
        self.models = list(models)
        self.embedding_dimension = embedding_dimension
        self.embedding_kind = embeddings
        self.chunk_delay = chunk_delay
        self.stream_usage = stream_usage
        self.send_done = send_done
        self.drop_after = drop_after
        self._ids = itertools.count(1)
        self.add_routes()

    def reset(self) -> None:
        """Forget what earlier tests sent and queued, so one server can serve many tests."""
        self.requests.clear()
        self._queued.clear()

    def add_routes(self) -> None:
        self.route("POST", "/v1/chat/completions", self.serve(self.chat))
        self.route("POST", "/v1/embeddings", self.serve(self.embeddings))
        self.route("GET", "/v1/models", self.serve(self.list_models))
        self.route("POST", "/v1/moderations", self.serve(self.moderations))
        self.route("POST", "/v1/audio/speech", self.serve(self.speech))
        self.route("POST", "/v1/audio/transcriptions", self.serve(self.transcriptions))

    def serve(self, handler: Handler) -> Handler:
        def serve(request: Request) -> Reply:
            try:
                self.authenticate(request)
                return handler(request)
            except Refusal as refusal:
                return refusal.reply

        return serve

    # --- hooks the Azure variant overrides -------------------------------------------
    def authenticate(self, request: Request) -> None:
        if self.api_key is None:
            return
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            raise Refusal(
                json_reply(
                    {"error": {**_NO_KEY, "param": None, "code": None}}, status=401, indent=4
                )
            )
        key = header.removeprefix("Bearer ")
        if key != self.api_key:
            raise Refusal(openai_error(401, key=key))

    def resolve_model(self, request: Request, body: dict) -> str:
        model = body.get("model")
        if not model:
            raise Refusal(self.missing("model"))
        if model not in self.models:
            raise Refusal(openai_error(404, model=model))
        return model

    def error(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> Reply:
        return openai_error(status, message, param=param, code=code)

    def stream_preamble(self) -> list[dict]:
        return []

    # --- handlers ----------------------------------------------------------------------
    def chat(self, request: Request) -> Reply:
        body = self.body(request)
        if not body.get("messages"):
            raise Refusal(self.missing("messages"))
        model = self.resolve_model(request, body)
        stream = bool(body.get("stream"))
        if body.get("stream_options") is not None and not stream:
            raise Refusal(
                self.error(
                    400,
                    "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                    param="stream_options",
                )
            )
        prompt = self.prompt(body)
        if prompt.json_mode and "json" not in json.dumps(body["messages"]).lower():
            raise Refusal(
                self.error(
                    400,
                    "'messages' must contain the word 'json' in some form, to use "
                    "'response_format' of type 'json_object'.",
                    param="messages",
                )
            )
        answer = think(prompt)
        if stream:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return self.chat_stream(model, prompt, answer, include_usage)
        return json_reply(self.completion(model, prompt, answer), indent=2)

    def prompt(self, body: dict) -> Prompt:
        messages = body["messages"]
        last = messages[-1]
        response_format = body.get("response_format") or {}
        schema = None
        if response_format.get("type") == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema") or {}
        stop = body.get("stop") or []
        tools = [] if body.get("tool_choice") == "none" else body.get("tools") or []
        return Prompt(
            last_text=_text(last.get("content")),
            last_role=last.get("role", "user"),
            images=_images(last.get("content")),
            prompt_tokens=sum(count_tokens(_text(m.get("content"))) for m in messages),
            tool_names=[t["function"]["name"] for t in tools],
            max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
            stop=[stop] if isinstance(stop, str) else list(stop),
            json_mode=response_format.get("type") == "json_object",
            schema=schema,
        )

    def completion(self, model: str, prompt: Prompt, answer: Answer) -> dict:
        message: dict = {"role": "assistant", "content": answer.text or None, "refusal": None}
        if answer.tool_name:
            message["tool_calls"] = [
                {
                    "id": self.call_id(answer),
                    "type": "function",
                    "function": {"name": answer.tool_name, "arguments": answer.tool_arguments},
                }
            ]
        return {
            "id": f"chatcmpl-fake{next(self._ids):06d}",
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": answer.finish_reason,
                }
            ],
            "usage": self.usage(prompt, answer),
            "system_fingerprint": "fp_fake",
        }

    def chat_stream(self, model: str, prompt: Prompt, answer: Answer, include_usage: bool) -> Reply:
        include_usage = include_usage and self.stream_usage
        chunk_id = f"chatcmpl-fake{next(self._ids):06d}"

        def chunk(delta: dict | None, finish_reason: str | None = None) -> dict:
            data: dict = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [],
            }
            if delta is not None:
                data["choices"] = [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ]
            if include_usage:
                data["usage"] = None
            return data

        chunks = list(self.stream_preamble())
        if answer.tool_name:
            arguments = answer.tool_arguments
            pieces = [arguments[i : i + 8] for i in range(0, len(arguments), 8)]
            first_call = {
                "index": 0,
                "id": self.call_id(answer),
                "type": "function",
                "function": {"name": answer.tool_name, "arguments": ""},
            }
            chunks.append(chunk({"role": "assistant", "content": None, "tool_calls": [first_call]}))
            chunks += [
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                for piece in pieces
            ]
        else:
            chunks.append(chunk({"role": "assistant", "content": "", "refusal": None}))
            chunks += [chunk({"content": token}) for token in answer.tokens]
        chunks.append(chunk({}, answer.finish_reason))
        if include_usage:
            last = chunk(None)
            last["usage"] = self.usage(prompt, answer)
            chunks.append(last)
        frames = [f"data: {compact(c)}" for c in chunks]
        if self.send_done:
            frames.append("data: [DONE]")
        return Reply.sse(frames, chunk_delay=self.chunk_delay, drop_after=self.drop_after)

    def usage(self, prompt: Prompt, answer: Answer) -> dict:
        return {
            "prompt_tokens": prompt.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": prompt.prompt_tokens + answer.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def call_id(self, answer: Answer) -> str:
        digest = hashlib.sha256(f"{answer.tool_name}{answer.tool_arguments}".encode())
        return f"call_{digest.hexdigest()[:24]}"

    def embeddings(self, request: Request) -> Reply:
        body = self.body(request)
        model = self.resolve_model(request, body)
        texts = _embedding_inputs(body.get("input"))
        if not texts or len(texts) > 2048:
            raise Refusal(
                self.error(
                    400,
                    "'$.input' is invalid. Please check the API reference: "
                    "https://platform.openai.com/docs/api-reference.",
                )
            )
        dimension = body.get("dimensions") or self.embedding_dimension
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            if self.embedding_kind == "words":
                vector = word_vector(text, dimension)
            elif self.embedding_kind == "topics":
                vector = topic_vector(text, dimension)
            else:
                vector = fake_vector(text, dimension)
            encoded = (
                base64.b64encode(struct.pack(f"<{dimension}f", *vector)).decode()
                if as_base64
                else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(count_tokens(text) for text in texts)
        return json_reply(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
            indent=2,
        )

    def list_models(self, request: Request) -> Reply:
        data = [
            {"id": m, "object": "model", "created": CREATED, "owned_by": "system"}
            for m in self.models
        ]
        return json_reply({"object": "list", "data": data}, indent=2)

    def moderations(self, request: Request) -> Reply:
        body = self.body(request)
        inputs = body.get("input")
        if inputs is None:
            raise Refusal(self.missing("input"))
        if not isinstance(inputs, list):
            inputs = [inputs]
        texts = [i.get("text", "") if isinstance(i, dict) else str(i) for i in inputs]
        return json_reply(
            {
                "id": f"modr-fake{next(self._ids):06d}",
                "model": body.get("model") or "omni-moderation-latest",
                "results": [_moderation(text) for text in texts],
            },
            indent=2,
        )

    def speech(self, request: Request) -> Reply:
        body = self.body(request)
        for name in ("model", "input", "voice"):
            if not body.get(name):
                raise Refusal(self.missing(name))
        self.resolve_model(request, body)
        audio = fake_speech(body["input"])
        return Reply(
            body=speech_chunks(audio),
            headers={"Content-Type": "audio/mpeg"},
            chunk_delay=self.chunk_delay,
            drop_after=self.drop_after,
        )

    def transcriptions(self, request: Request) -> Reply:
        fields = multipart_fields(request)
        if "file" not in fields:
            raise Refusal(self.missing("file"))
        model = fields.get("model", (None, b""))[1].decode()
        self.resolve_model(request, {"model": model})
        text = hear(fields["file"][1])
        response_format = fields.get("response_format", (None, b"json"))[1].decode()
        if response_format == "text":
            return Reply(
                body=f"{text}\n".encode(), headers={"Content-Type": "text/plain; charset=utf-8"}
            )
        return json_reply({"text": text}, indent=2)

    # --- helpers -----------------------------------------------------------------------
    def body(self, request: Request) -> dict:
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Refusal(
                self.error(
                    400,
                    "We could not parse the JSON body of your request. (HINT: This likely "
                    "means you aren't using your HTTP library correctly. The OpenAI API "
                    "expects a JSON payload, but what was sent was not valid JSON.)",
                )
            )
        return body

    def missing(self, name: str) -> Reply:
        return self.error(
            400,
            f"Missing required parameter: '{name}'.",
            param=name,
            code="missing_required_parameter",
        )


def _text(content) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if p.get("type") == "text")
    return content or ""


def _images(content) -> int:
    if isinstance(content, list):
        return sum(1 for p in content if p.get("type") == "image_url")
    return 0


def _embedding_inputs(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        return []
    if all(isinstance(v, int) for v in value):  # one text as token ids
        return [json.dumps(value)]
    return [v if isinstance(v, str) else json.dumps(v) for v in value]


def _moderation(text: str) -> dict:
    hits = {category for word, category in FLAGGED_WORDS.items() if word in text.lower()}
    return {
        "flagged": bool(hits),
        "categories": {c: c in hits for c in MODERATION_CATEGORIES},
        "category_scores": {c: 0.97 if c in hits else 0.0001 for c in MODERATION_CATEGORIES},
        "category_applied_input_types": {
            c: ["text"] if c in hits else [] for c in MODERATION_CATEGORIES
        },
    }


# --- Azure OpenAI ----------------------------------------------------------------------

AZURE_DEFAULT_DEPLOYMENTS = {
    "chat": "gpt-4o-mini",
    "embedding": "text-embedding-3-small",
    "speech": "tts-1",
    "whisper": "whisper-1",
}
_AZURE_FILTERS = {
    name: {"filtered": False, "severity": "safe"}
    for name in ("hate", "self_harm", "sexual", "violence")
}


def azure_error(status: int, message: str | None = None, *, code: str | None = None) -> Reply:
    """Azure's error body: `code` and `message`, no type or param."""
    defaults = {
        401: "Access denied due to invalid subscription key or wrong API endpoint. Make sure "
        "to provide a valid key for an active subscription and use a correct regional API "
        "endpoint for your resource.",
        404: "Resource not found",
        429: "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
        "2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. "
        "Please retry after 6 seconds.",
        500: "The server had an error while processing your request. Sorry about that!",
        503: "The service is temporarily unable to process your request. Please try again later.",
    }
    body = {"error": {"code": code or str(status), "message": message or defaults.get(status)}}
    headers = {"Retry-After": "6", "retry-after-ms": "6000"} if status == 429 else {}
    return json_reply(body, status=status, headers=headers, indent=2)


class FakeAzureOpenAI(FakeOpenAI):
    """Azure OpenAI at `{url}`: `/openai/deployments/{deployment}/...?api-version=...`,
    authenticated by the `api-key` header. `deployments` maps deployment → model."""

    def __init__(
        self,
        *,
        api_key: str | None = "azure-fake-key",
        deployments: dict[str, str] | None = None,
        **kwargs,
    ):
        self.deployments = dict(deployments or AZURE_DEFAULT_DEPLOYMENTS)
        super().__init__(api_key=api_key, models=list(self.deployments.values()), **kwargs)

    def add_routes(self) -> None:
        prefix = "/openai/deployments/[^/]+"
        routes: list[tuple[str, Callable[[Request], Reply]]] = [
            ("chat/completions", self.chat),
            ("embeddings", self.embeddings),
            ("audio/speech", self.speech),
            ("audio/transcriptions", self.transcriptions),
        ]
        for path, handler in routes:
            self.route("POST", f"{prefix}/{path}", self.serve(handler))

    def authenticate(self, request: Request) -> None:
        if not request.query.get("api-version"):
            raise Refusal(azure_error(404))
        if self.api_key is not None and request.headers.get("api-key") != self.api_key:
            raise Refusal(azure_error(401))

    def resolve_model(self, request: Request, body: dict) -> str:
        deployment = request.path.split("/")[3]
        if deployment not in self.deployments:
            raise Refusal(
                azure_error(
                    404,
                    "The API deployment for this resource does not exist. If you created the "
                    "deployment within the last 5 minutes, please wait a moment and try again.",
                    code="DeploymentNotFound",
                )
            )
        return self.deployments[deployment]

    def error(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> Reply:
        return azure_error(status, message, code="BadRequest" if status == 400 else None)

    def stream_preamble(self) -> list[dict]:
        # Azure opens every stream with the prompt's content-filter verdict: a chunk with
        # no choices, no id and no model.
        return [
            {
                "choices": [],
                "created": 0,
                "id": "",
                "model": "",
                "object": "",
                "prompt_filter_results": [
                    {"prompt_index": 0, "content_filter_results": _AZURE_FILTERS}
                ],
            }
        ]

    def completion(self, model: str, prompt: Prompt, answer: Answer) -> dict:
        data = super().completion(model, prompt, answer)
        data["prompt_filter_results"] = [
            {"prompt_index": 0, "content_filter_results": _AZURE_FILTERS}
        ]
        data["choices"][0]["content_filter_results"] = _AZURE_FILTERS
        return data


def speech_chunks(audio: bytes, size: int = 1024) -> Iterator[bytes]:
    return (audio[i : i + size] for i in range(0, len(audio), size))
