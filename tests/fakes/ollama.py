"""A fake Ollama server on a loopback port: /api/chat (NDJSON stream or one JSON object),
/api/embed, /api/tags and /api/show, with Ollama's `{"error": "..."}` bodies.

The replies come from the same deterministic model as the OpenAI fake (`think`): "You
said: <last message>", a tool call for a weather question when a tool is offered."""

from __future__ import annotations

import hashlib
import json

from tests.fakes.openai import (
    Prompt,
    Refusal,
    compact,
    count_tokens,
    fake_vector,
    json_reply,
    think,
)
from tests.fakes.server import FakeProvider, Reply, Request

CREATED_AT = "2025-01-15T09:30:00.123456789Z"
MODIFIED_AT = "2025-01-10T08:06:48.639712648-07:00"
DEFAULT_MODELS: dict[str, dict] = {
    "llama3.2:latest": {
        "family": "llama",
        "parameter_size": "3.2B",
        "quantization_level": "Q4_K_M",
        "size": 2019393189,
        "context_length": 131072,
        "capabilities": ["completion", "tools"],
    },
    "llava:latest": {
        "family": "llama",
        "families": ["llama", "clip"],
        "parameter_size": "7B",
        "quantization_level": "Q4_0",
        "size": 4733363377,
        "context_length": 32768,
        "capabilities": ["completion", "vision"],
    },
    "nomic-embed-text:latest": {
        "family": "nomic-bert",
        "parameter_size": "137M",
        "quantization_level": "F16",
        "size": 274302450,
        "context_length": 2048,
        "capabilities": ["embedding"],
    },
}
# Durations Ollama reports, in nanoseconds; fixed so replies are repeatable.
_DURATIONS = {"total_duration": 4_883_583_458, "load_duration": 1_334_875}


def ollama_error(status: int, message: str) -> Reply:
    return json_reply({"error": message}, status=status)


class FakeOllama(FakeProvider):
    """Ollama at `{url}`. `models` maps "name:tag" to its details and capabilities;
    `drop_after=n` cuts a stream after n lines."""

    def __init__(
        self,
        *,
        models: dict[str, dict] | None = None,
        embedding_dimension: int = 8,
        chunk_delay: float = 0.0,
        drop_after: int | None = None,
    ):
        super().__init__()
        self.models = dict(DEFAULT_MODELS if models is None else models)
        self.embedding_dimension = embedding_dimension
        self.chunk_delay = chunk_delay
        self.drop_after = drop_after
        self.route("POST", "/api/chat", self._serve(self.chat))
        self.route("POST", "/api/embed", self._serve(self.embed))
        self.route("GET", "/api/tags", self._serve(self.tags))
        self.route("POST", "/api/show", self._serve(self.show))

    def reset(self) -> None:
        """Forget what earlier tests sent and queued, so one server can serve many tests."""
        self.requests.clear()
        self._queued.clear()

    @staticmethod
    def _serve(handler):
        def serve(request: Request) -> Reply:
            try:
                return handler(request)
            except Refusal as refusal:
                return refusal.reply

        return serve

    # --- handlers ----------------------------------------------------------------------
    def chat(self, request: Request) -> Reply:
        body = self._body(request)
        name = self._model(body)
        capabilities = self.models[name].get("capabilities", ["completion"])
        if "completion" not in capabilities:
            raise Refusal(ollama_error(400, f'"{body["model"]}" does not support chat'))
        if body.get("tools") and "tools" not in capabilities:
            raise Refusal(
                ollama_error(400, f"registry.ollama.ai/library/{name} does not support tools")
            )
        messages = body.get("messages") or []
        if not messages:
            # Ollama answers an empty chat by loading the model.
            return json_reply(self._done(body["model"], "", None, "load", 0, 0))
        prompt = self._prompt(body, messages)
        answer = think(prompt)
        done_reason = "length" if answer.finish_reason == "length" else "stop"
        tool_calls = None
        if answer.tool_name:
            arguments = json.loads(answer.tool_arguments)
            tool_calls = [{"function": {"name": answer.tool_name, "arguments": arguments}}]
        counts = (prompt.prompt_tokens, answer.completion_tokens)
        if body.get("stream", True) is False:
            return json_reply(
                self._done(body["model"], answer.text, tool_calls, done_reason, *counts)
            )
        lines = [self._line(body["model"], {"content": token}) for token in answer.tokens]
        if tool_calls:
            lines.append(self._line(body["model"], {"content": "", "tool_calls": tool_calls}))
        lines.append(self._done(body["model"], "", None, done_reason, *counts))
        return Reply(
            body=(f"{compact(line)}\n".encode() for line in lines),
            headers={"Content-Type": "application/x-ndjson"},
            chunk_delay=self.chunk_delay,
            drop_after=self.drop_after,
        )

    def embed(self, request: Request) -> Reply:
        body = self._body(request)
        self._model(body)
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dimension = body.get("dimensions") or self.embedding_dimension
        return json_reply(
            {
                "model": body["model"],
                "embeddings": [fake_vector(text, dimension) for text in texts],
                **_DURATIONS,
                "prompt_eval_count": sum(count_tokens(text) for text in texts),
            }
        )

    def tags(self, request: Request) -> Reply:
        return json_reply({"models": [self._summary(name) for name in self.models]})

    def show(self, request: Request) -> Reply:
        body = self._body(request)
        name = self._model(body)
        spec = self.models[name]
        family = spec.get("family", "llama")
        return json_reply(
            {
                "modelfile": f"FROM {name}\n",
                "parameters": 'stop                           "<|eot_id|>"',
                "template": "{{ .Prompt }}",
                "details": self._details(spec),
                "model_info": {
                    "general.architecture": family,
                    f"{family}.context_length": spec.get("context_length", 4096),
                },
                "capabilities": spec.get("capabilities", ["completion"]),
                "modified_at": MODIFIED_AT,
            }
        )

    # --- helpers -----------------------------------------------------------------------
    def _body(self, request: Request) -> dict:
        try:
            body = request.json()
        except ValueError as exc:
            raise Refusal(ollama_error(400, f"invalid character: {exc}")) from exc
        if not isinstance(body, dict):
            raise Refusal(ollama_error(400, "unexpected JSON body"))
        return body

    def _model(self, body: dict) -> str:
        model = body.get("model") or body.get("name")
        if not model:
            raise Refusal(ollama_error(400, "model is required"))
        name = model if ":" in model else f"{model}:latest"
        if name not in self.models:
            raise Refusal(ollama_error(404, f'model "{model}" not found, try pulling it first'))
        body["model"] = model
        return name

    def _prompt(self, body: dict, messages: list[dict]) -> Prompt:
        last = messages[-1]
        options = body.get("options") or {}
        stop = options.get("stop") or []
        fmt = body.get("format")
        return Prompt(
            last_text=last.get("content") or "",
            last_role=last.get("role", "user"),
            images=len(last.get("images") or []),
            prompt_tokens=sum(count_tokens(m.get("content") or "") for m in messages),
            tool_names=[t["function"]["name"] for t in body.get("tools") or []],
            max_tokens=options.get("num_predict"),
            stop=[stop] if isinstance(stop, str) else list(stop),
            json_mode=fmt == "json",
            schema=fmt if isinstance(fmt, dict) else None,
        )

    @staticmethod
    def _line(model: str, message: dict) -> dict:
        return {
            "model": model,
            "created_at": CREATED_AT,
            "message": {"role": "assistant", **message},
            "done": False,
        }

    @staticmethod
    def _done(
        model: str,
        content: str,
        tool_calls: list | None,
        done_reason: str,
        prompt_tokens: int,
        output_tokens: int,
    ) -> dict:
        message: dict = {"role": "assistant", "content": content}
        if tool_calls:
            message["tool_calls"] = tool_calls
        return {
            "model": model,
            "created_at": CREATED_AT,
            "message": message,
            "done_reason": done_reason,
            "done": True,
            **_DURATIONS,
            "prompt_eval_count": prompt_tokens,
            "prompt_eval_duration": 342_546_000,
            "eval_count": output_tokens,
            "eval_duration": 4_535_599_000,
        }

    def _summary(self, name: str) -> dict:
        spec = self.models[name]
        return {
            "name": name,
            "model": name,
            "modified_at": MODIFIED_AT,
            "size": spec.get("size", 0),
            "digest": hashlib.sha256(name.encode()).hexdigest(),
            "details": self._details(spec),
        }

    @staticmethod
    def _details(spec: dict) -> dict:
        family = spec.get("family", "llama")
        return {
            "parent_model": "",
            "format": "gguf",
            "family": family,
            "families": spec.get("families", [family]),
            "parameter_size": spec.get("parameter_size", ""),
            "quantization_level": spec.get("quantization_level", ""),
        }
