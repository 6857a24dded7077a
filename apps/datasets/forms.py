"""Forms of the knowledge pages. They only shape input; the services validate it."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.datasets.models import DatasetPermission, IndexingTechnique

SEARCH_METHODS = [
    ("semantic_search", "Semantic (vector) search"),
    ("full_text_search", "Full-text search"),
    ("hybrid_search", "Hybrid search"),
]
RULE_MODES = [
    ("automatic", "Automatic"),
    ("custom", "Custom"),
    ("hierarchical", "Parent-child"),
]
PARENT_MODES = [("paragraph", "Paragraphs"), ("full-doc", "The whole document")]


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=40)
    description = forms.CharField(
        max_length=400, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    permission = forms.ChoiceField(
        choices=DatasetPermission.choices, label="Who can see it", widget=forms.RadioSelect
    )
    members = forms.MultipleChoiceField(
        required=False, label="Chosen members", widget=forms.CheckboxSelectMultiple
    )
    indexing_technique = forms.ChoiceField(
        choices=IndexingTechnique.choices, label="Index technique", widget=forms.RadioSelect
    )
    embedding_model = forms.ChoiceField(required=False, label="Embedding model")

    def __init__(self, *args, members=(), embedding_models=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["members"].choices = [(str(m.user_id), m.user.email) for m in members]
        self.fields["embedding_model"].choices = [
            ("", "The workspace's default embedding model"),
            *embedding_models,
        ]

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        provider, _, model = (data.get("embedding_model") or "").partition("/")
        return {
            "name": data["name"],
            "description": data["description"],
            "permission": data["permission"],
            "member_ids": data["members"],
            "indexing_technique": data["indexing_technique"],
            "embedding_model_provider": provider,
            "embedding_model": model,
        }


class RetrievalForm(forms.Form):
    search_method = forms.ChoiceField(choices=SEARCH_METHODS, label="Search")
    top_k = forms.IntegerField(min_value=1, max_value=10, initial=4, label="Top K")
    score_threshold_enabled = forms.BooleanField(required=False, label="Use a score threshold")
    score_threshold = forms.FloatField(
        min_value=0, max_value=1, initial=0.5, required=False, label="Score threshold"
    )
    vector_weight = forms.FloatField(
        min_value=0,
        max_value=1,
        initial=0.7,
        required=False,
        label="Semantic weight (hybrid)",
        help_text="The keyword weight is the rest: 1 − this.",
    )
    reranking_model = forms.ChoiceField(required=False, label="Rerank model")

    def __init__(self, *args, rerank_models=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reranking_model"].choices = [("", "None")] + list(rerank_models)

    @classmethod
    def initial_from(cls, retrieval_model: dict[str, Any]) -> dict[str, Any]:
        rerank = retrieval_model.get("reranking_model") or {}
        weights = retrieval_model.get("weights") or {}
        name = rerank.get("reranking_model_name")
        return {
            "search_method": retrieval_model.get("search_method", "semantic_search"),
            "top_k": retrieval_model.get("top_k", 4),
            "score_threshold_enabled": retrieval_model.get("score_threshold_enabled", False),
            "score_threshold": retrieval_model.get("score_threshold", 0.5),
            "vector_weight": (weights.get("vector_setting") or {}).get("vector_weight", 0.7),
            "reranking_model": f"{rerank.get('reranking_provider_name')}/{name}"
            if retrieval_model.get("reranking_enable") and name
            else "",
        }

    def retrieval_model(self) -> dict[str, Any]:
        data = self.cleaned_data
        provider, _, model = (data.get("reranking_model") or "").partition("/")
        vector_weight = data.get("vector_weight")
        vector_weight = 0.7 if vector_weight is None else vector_weight
        hybrid_weighted = data["search_method"] == "hybrid_search" and not model
        return {
            "search_method": data["search_method"],
            "top_k": data["top_k"],
            "score_threshold_enabled": data["score_threshold_enabled"],
            "score_threshold": data.get("score_threshold") or 0,
            "reranking_enable": bool(model),
            "reranking_mode": "weighted_score" if hybrid_weighted else "reranking_model",
            "reranking_model": {"reranking_provider_name": provider, "reranking_model_name": model},
            "weights": {
                "weight_type": "customized",
                "vector_setting": {"vector_weight": vector_weight},
                "keyword_setting": {"keyword_weight": round(1 - vector_weight, 4)},
            }
            if hybrid_weighted
            else None,
        }


class ProcessRuleForm(forms.Form):
    """Dify's process_rule, as a form: automatic, custom, or parent-child."""

    mode = forms.ChoiceField(
        choices=RULE_MODES, initial="automatic", label="Mode", widget=forms.RadioSelect
    )
    separator = forms.CharField(
        max_length=20,
        required=False,
        initial="\\n\\n",
        label="Separator",
        help_text="Where to split first; \\n is a line break.",
    )
    max_tokens = forms.IntegerField(
        min_value=50, max_value=4000, initial=1024, required=False, label="Maximum chunk length"
    )
    chunk_overlap = forms.IntegerField(
        min_value=0, max_value=2000, initial=50, required=False, label="Overlap"
    )
    parent_mode = forms.ChoiceField(
        choices=PARENT_MODES, initial="paragraph", required=False, label="Parent chunks"
    )
    subchunk_separator = forms.CharField(
        max_length=20, required=False, initial="\\n", label="Child separator"
    )
    subchunk_max_tokens = forms.IntegerField(
        min_value=20, max_value=4000, initial=256, required=False, label="Child chunk length"
    )
    remove_extra_spaces = forms.BooleanField(
        required=False, initial=True, label="Collapse extra spaces and blank lines"
    )
    remove_urls_emails = forms.BooleanField(required=False, label="Remove URLs and email addresses")

    @classmethod
    def initial_from(cls, rule: dict[str, Any]) -> dict[str, Any]:
        rules = rule.get("rules") or {}
        segmentation = rules.get("segmentation") or {}
        sub = rules.get("subchunk_segmentation") or {}
        pre = {r.get("id"): r.get("enabled") for r in rules.get("pre_processing_rules") or []}
        initial = {"mode": rule.get("mode") or "automatic"}
        if segmentation:
            initial.update(
                separator=segmentation.get("separator", "\\n\\n").replace("\n", "\\n"),
                max_tokens=segmentation.get("max_tokens", 1024),
                chunk_overlap=segmentation.get("chunk_overlap", 50),
            )
        if sub:
            initial.update(
                subchunk_separator=sub.get("separator", "\\n").replace("\n", "\\n"),
                subchunk_max_tokens=sub.get("max_tokens", 256),
            )
        if rules.get("parent_mode"):
            initial["parent_mode"] = rules["parent_mode"]
        if pre:
            initial["remove_extra_spaces"] = bool(pre.get("remove_extra_spaces"))
            initial["remove_urls_emails"] = bool(pre.get("remove_urls_emails"))
        return initial

    def process_rule(self) -> dict[str, Any]:
        data = self.cleaned_data
        if data["mode"] == "automatic":
            return {"mode": "automatic", "rules": {}}
        rules: dict[str, Any] = {
            "pre_processing_rules": [
                {"id": "remove_extra_spaces", "enabled": data["remove_extra_spaces"]},
                {"id": "remove_urls_emails", "enabled": data["remove_urls_emails"]},
            ],
            "segmentation": {
                "separator": data.get("separator") or "\\n\\n",
                "max_tokens": data.get("max_tokens") or 1024,
                "chunk_overlap": data.get("chunk_overlap") or 0,
            },
        }
        if data["mode"] == "hierarchical":
            rules["parent_mode"] = data.get("parent_mode") or "paragraph"
            rules["subchunk_segmentation"] = {
                "separator": data.get("subchunk_separator") or "\\n",
                "max_tokens": data.get("subchunk_max_tokens") or 256,
                "chunk_overlap": 0,
            }
        return {"mode": data["mode"], "rules": rules}


class DeleteDatasetForm(forms.Form):
    confirm_name = forms.CharField(max_length=100, label="Type the knowledge base's name")


class TextDocumentForm(forms.Form):
    name = forms.CharField(max_length=255, label="Document name")
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 10}), label="Text")


class UrlDocumentForm(forms.Form):
    url = forms.URLField(max_length=2000, label="Web page address", assume_scheme="https")


class SegmentForm(forms.Form):
    content = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), label="Chunk text")
    keywords = forms.CharField(
        required=False, max_length=1000, label="Keywords", help_text="Separated by commas."
    )

    def keyword_list(self) -> list[str]:
        raw = self.cleaned_data.get("keywords") or ""
        return [k.strip() for k in raw.split(",") if k.strip()][:50]


class HitTestingForm(forms.Form):
    query = forms.CharField(max_length=250, label="Query", widget=forms.Textarea(attrs={"rows": 3}))


class DatasetKeyForm(forms.Form):
    name = forms.CharField(max_length=100, label="Key name")
