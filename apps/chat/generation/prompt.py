"""The messages sent to the model: the app's prompt with its variables and knowledge
context, the conversation so far (windowed by turns and by tokens), and the query."""

from __future__ import annotations

from apps.chat.generation.inputs import CONTEXT_SLOT, render
from apps.chat.generation.turn import MAX_HISTORY_MESSAGES, Turn
from apps.chat.models import AppMode
from apps.providers.runtime.types import ImagePart, TextPart
from apps.providers.runtime.types import Message as LLMMessage
from apps.providers.tokens import estimate_tokens

DEFAULT_MAX_TOKENS = 512  # what a reply is assumed to need when max_tokens is not set
CONTEXT_FRAMING_TOKENS = 32  # the words that introduce the knowledge in the prompt


def build_messages(turn: Turn, *, context: str = "") -> list[LLMMessage]:
    template = turn.config.get("pre_prompt") or ""
    prompt = render(template, inputs=turn.inputs, context=context, query=turn.query)
    if context and CONTEXT_SLOT not in template:
        prompt = (
            f"{prompt}\n\nUse the following context as your learned knowledge:\n"
            f"<context>\n{context}\n</context>"
        ).strip()
    if turn.app.mode == AppMode.COMPLETION:
        text = prompt or turn.query
        if turn.query and "{{query}}" not in template and turn.query not in text:
            text = f"{text}\n\n{turn.query}"
        return [LLMMessage("user", _with_images(text, turn.images))]
    messages = [LLMMessage("system", prompt)] if prompt.strip() else []
    used = sum(estimate_tokens(m.text) for m in messages) + estimate_tokens(turn.query)
    for query, answer in fit_history(turn, used_tokens=used):
        messages += [LLMMessage("user", query), LLMMessage("assistant", answer)]
    messages.append(LLMMessage("user", _with_images(turn.query, turn.images)))
    return messages


def fit_context(turn: Turn, resources: list[dict]) -> list[dict]:
    """The retrieved passages that fit the model's context, best first: what is left of the
    context size after the reply's max_tokens, the prompt and the query. History comes
    after the knowledge, from whatever remains (see fit_history)."""
    template = turn.config.get("pre_prompt") or ""
    max_tokens = int(turn.model.parameters.get("max_tokens") or DEFAULT_MAX_TOKENS)
    budget = (
        turn.model.context_size
        - max_tokens
        - estimate_tokens(render(template, inputs=turn.inputs, context="", query=turn.query))
        - estimate_tokens(turn.query)
        - CONTEXT_FRAMING_TOKENS
    )
    kept = []
    for resource in resources:
        budget -= estimate_tokens(str(resource.get("content") or ""))
        if budget < 0:
            break
        kept.append(resource)
    return kept


def fit_history(turn: Turn, *, used_tokens: int) -> list[tuple[str, str]]:
    """The newest turns that fit: at most the window's size (when enabled), within the
    memory's own token limit (`memory.max_tokens`, when set), and within the model's context
    size less the reply's max_tokens and the rest of the prompt."""
    memory = turn.config.get("memory") or {}
    window = memory.get("window") or {}
    limit = int(window.get("size") or 0) if window.get("enabled") else MAX_HISTORY_MESSAGES
    history = turn.history[-limit:] if limit > 0 else []
    max_tokens = int(turn.model.parameters.get("max_tokens") or DEFAULT_MAX_TOKENS)
    budget = turn.model.context_size - max_tokens - used_tokens
    try:
        memory_limit = int(memory.get("max_tokens") or 0)
    except (TypeError, ValueError):
        memory_limit = 0
    if memory_limit > 0:
        budget = min(budget, memory_limit)
    kept: list[tuple[str, str]] = []
    for query, answer in reversed(history):
        budget -= estimate_tokens(query) + estimate_tokens(answer)
        if budget < 0:
            break
        kept.append((query, answer))
    return list(reversed(kept))


def _with_images(text: str, images: list[ImagePart]):
    if not images:
        return text
    return [TextPart(text), *images]
