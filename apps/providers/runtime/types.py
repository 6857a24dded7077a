"""What flows in and out of a model call, the same for every provider."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass
class TextPart:
    text: str
    type: Literal["text"] = "text"


@dataclass
class ImagePart:
    """An image for a vision model: an https URL or a data: URL (base64)."""

    url: str
    detail: Literal["auto", "low", "high"] = "auto"
    type: Literal["image"] = "image"


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it


@dataclass
class Message:
    role: Role
    content: str | list[TextPart | ImagePart] = ""
    tool_calls: list[ToolCall] = field(default_factory=list)  # assistant turns
    tool_call_id: str | None = None  # tool turns: which call this answers
    name: str | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextPart))


@dataclass
class ToolSpec:
    name: str
    description: str = ""
    parameters: dict = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class LLMRequest:
    model: str
    messages: list[Message]
    # Values of the model's parameter rules: temperature, top_p, top_k, max_tokens,
    # presence_penalty, frequency_penalty, seed, response_format ("text", "json_object",
    # "json_schema") and json_schema (a dict) for structured output.
    parameters: dict = field(default_factory=dict)
    tools: list[ToolSpec] = field(default_factory=list)
    stop: list[str] = field(default_factory=list)
    user: str | None = None


# --- Streaming events ------------------------------------------------------------


@dataclass
class TextDelta:
    text: str


@dataclass
class ToolCallDelta:
    """A piece of a tool call. The first piece of call `index` carries id and name;
    later pieces append to its arguments."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass
class UsageEvent:
    usage: Usage


@dataclass
class Finish:
    reason: str  # stop, length, tool_calls, content_filter


LLMEvent = TextDelta | ToolCallDelta | UsageEvent | Finish


@dataclass
class LLMResult:
    model: str
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = "stop"


@dataclass
class EmbeddingResult:
    vectors: list[list[float]]
    usage: Usage = field(default_factory=Usage)


@dataclass
class RerankItem:
    index: int  # position in the documents given
    score: float
    text: str


@dataclass
class RerankResult:
    items: list[RerankItem]  # best first
    usage: Usage = field(default_factory=Usage)


@dataclass
class ModerationResult:
    flagged: bool
    categories: dict[str, bool] = field(default_factory=dict)


@dataclass
class RemoteModel:
    """A model a provider lists through its API (fetch-from-remote)."""

    model: str
    model_type: str = "llm"
    context_size: int | None = None
