"""Adapters by wire protocol. Imported lazily: a protocol's module loads on first use."""

from django.utils.module_loading import import_string

ADAPTERS = {
    "openai": "apps.providers.runtime.adapters.openai.OpenAIAdapter",
    "azure_openai": "apps.providers.runtime.adapters.openai.AzureOpenAIAdapter",
    "anthropic": "apps.providers.runtime.adapters.anthropic.AnthropicAdapter",
    "gemini": "apps.providers.runtime.adapters.gemini.GeminiAdapter",
    "ollama": "apps.providers.runtime.adapters.ollama.OllamaAdapter",
    "cohere": "apps.providers.runtime.adapters.cohere.CohereAdapter",
    "jina": "apps.providers.runtime.adapters.rerankers.JinaAdapter",
    "voyage": "apps.providers.runtime.adapters.rerankers.VoyageAdapter",
    "tei": "apps.providers.runtime.adapters.rerankers.TEIAdapter",
    "local": "apps.providers.runtime.adapters.local.LocalAdapter",
}


def adapter_class(protocol: str):
    if protocol not in ADAPTERS:
        raise KeyError(f"No adapter for protocol {protocol!r}")
    return import_string(ADAPTERS[protocol])
