"""An app's configuration: one JSON document in the shape of Dify's app_model_config, so
Dify DSL files import and export without translation. New apps start from `default_config`.

Keys used (all optional but `model`): model{provider, name, mode, completion_params},
pre_prompt, user_input_form, opening_statement, suggested_questions,
suggested_questions_after_answer{enabled}, more_like_this{enabled},
sensitive_word_avoidance{enabled, type, config}, annotation_reply{enabled, score_threshold,
embedding_model{embedding_provider_name, embedding_model_name}}, dataset_configs,
retriever_resource{enabled}, file_upload, speech_to_text, text_to_speech, plus Orrery's
memory{window{enabled, size}, max_tokens}, stop (a list of stop sequences) and
model.fallbacks: [{provider, name}, …], the language models that answer, in order, when
the app's model fails (absent means none; see apps.chat.fallbacks)."""

from __future__ import annotations

import copy

from apps.chat.models import AppMode

_COMMON = {
    "model": {"provider": "", "name": "", "mode": "chat", "completion_params": {}},
    "pre_prompt": "",
    "user_input_form": [],
    "opening_statement": "",
    "suggested_questions": [],
    "suggested_questions_after_answer": {"enabled": False},
    "more_like_this": {"enabled": False},
    "sensitive_word_avoidance": {"enabled": False, "type": "keywords", "config": {}},
    "annotation_reply": {"enabled": False},
    "dataset_configs": {"retrieval_model": "multiple", "datasets": {"datasets": []}},
    "retriever_resource": {"enabled": True},
    "file_upload": {"image": {"enabled": False, "number_limits": 3, "detail": "high"}},
    "speech_to_text": {"enabled": False},
    "text_to_speech": {"enabled": False},
    "memory": {"window": {"enabled": False, "size": 10}},
    "stop": [],
}

_BY_MODE = {
    AppMode.CHAT: {"pre_prompt": "You are a helpful assistant."},
    AppMode.COMPLETION: {
        "pre_prompt": "{{query}}",
        "user_input_form": [
            {"paragraph": {"label": "Query", "variable": "query", "required": True, "default": ""}}
        ],
    },
}


def default_config(mode: str, *, provider: str = "", model: str = "") -> dict:
    """A fresh configuration for a new app of this mode, using the given model."""
    config = copy.deepcopy(_COMMON)
    config.update(copy.deepcopy(_BY_MODE.get(mode, {})))
    config["model"].update(provider=provider, name=model)
    return config
