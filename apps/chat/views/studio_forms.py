"""The studio's forms: the small Django forms of the apps list, and the configuration form,
which reads the submitted page back into an app's configuration (Dify's app_model_config
shape, see apps.chat.config) and says what is wrong field by field.

The configuration form keeps every key it does not edit (file_upload, text_to_speech …), so
a configuration imported from Dify survives a save on this page."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from django import forms

from apps.chat.fallbacks import fallbacks_check
from apps.chat.models import AppMode
from apps.chat.services.apps import BUILDABLE_MODES
from apps.core.errors import DomainError
from apps.datasets.app_retrieval import attached_dataset_ids
from apps.datasets.models import Dataset
from apps.datasets.retrieval import MAX_TOP_K
from apps.datasets.selectors import dataset_visible
from apps.providers import catalog, selectors
from apps.providers.views.playground import (
    ModelChoice,
    control_for,
    model_choice,
    model_choices,
    read_parameters,
)

# --- The apps list --------------------------------------------------------------------


def _clean_icon(value: str) -> str:
    """An emoji (or a few): no letters, digits or markup from the keyboard's ASCII."""
    value = (value or "").strip()
    if any(ord(c) < 128 for c in value):
        raise forms.ValidationError("Use an emoji, like 🤖.")
    return value


class _IconMixin:
    def clean_icon(self) -> str:
        return _clean_icon(self.cleaned_data.get("icon", ""))


class AppCreateForm(_IconMixin, forms.Form):
    name = forms.CharField(max_length=100, label="Name")
    mode = forms.ChoiceField(
        choices=[(m.value, m.label) for m in BUILDABLE_MODES], label="Type", initial="chat"
    )
    icon = forms.CharField(max_length=16, required=False, label="Icon (an emoji)")
    description = forms.CharField(
        max_length=2000, required=False, label="Description", widget=forms.Textarea({"rows": 2})
    )


class AppEditForm(_IconMixin, forms.Form):
    name = forms.CharField(max_length=100, label="Name")
    icon = forms.CharField(max_length=16, required=False, label="Icon (an emoji)")
    description = forms.CharField(
        max_length=2000, required=False, label="Description", widget=forms.Textarea({"rows": 2})
    )


class AppDeleteForm(forms.Form):
    confirm_name = forms.CharField(max_length=100, label="Type the app's name to confirm")


class AppImportForm(forms.Form):
    file = forms.FileField(label="Dify DSL file (.yml)")

    MAX_BYTES = 1_000_000

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError("The file is larger than 1 MB; is it really an app?")
        try:
            return upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text (a YAML file is).") from None


class PublishForm(forms.Form):
    enable_site = forms.BooleanField(required=False, label="Public web app on")
    site_requires_login = forms.BooleanField(
        required=False, label="Only signed-in members of this workspace"
    )
    enable_api = forms.BooleanField(required=False, label="Service API on")
    rate_limit_per_minute = forms.IntegerField(
        min_value=0, max_value=100_000, label="Requests per minute for the app (0: no limit)"
    )
    end_user_rate_limit_per_minute = forms.IntegerField(
        min_value=0, max_value=100_000, label="Requests per minute per end user (0: no limit)"
    )
    max_active_requests = forms.IntegerField(
        min_value=0, max_value=10_000, label="Answers generated at once (0: no limit)"
    )


class ApiKeyNameForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, label="Key name")


class AnnotationForm(forms.Form):
    question = forms.CharField(max_length=10000, widget=forms.Textarea({"rows": 2}))
    answer = forms.CharField(max_length=10000, widget=forms.Textarea({"rows": 4}))


class AnnotateForm(forms.Form):
    answer = forms.CharField(
        max_length=10000, widget=forms.Textarea({"rows": 5}), label="Answer to give"
    )


class LogFilterForm(forms.Form):
    q = forms.CharField(max_length=200, required=False, label="Search")
    feedback = forms.ChoiceField(
        required=False,
        label="Feedback",
        choices=[("", "Any"), ("like", "Liked"), ("dislike", "Disliked"), ("none", "None")],
    )
    conversation = forms.UUIDField(required=False, widget=forms.HiddenInput)
    start = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    end = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and start > end:
            self.add_error("end", "The end date is before the start date.")
        return cleaned


# --- The configuration form -------------------------------------------------------------

VARIABLE_TYPES = [
    ("text-input", "Short text"),
    ("paragraph", "Paragraph"),
    ("select", "Select"),
    ("number", "Number"),
]
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,29}$")
PROMPT_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
VAR_FIELD = re.compile(r"^var-(\d{1,3})-variable$")
FALLBACK_FIELD = re.compile(r"^fallback-(\d{1,2})$")
FALLBACK_MOVE = re.compile(r"^(up|down|remove)-(\d{1,2})$")
MAX_VARIABLES = 40
MAX_PROMPT_CHARS = 100_000
MAX_LINES = 10  # suggested questions
MAX_STOP = 4
MAX_KEYWORD_LINES = 100
MAX_KEYWORD_CHARS = 10_000
MAX_PRESET_CHARS = 2_000
MAX_MEMORY_TURNS = 100
TRUE = {"true", "on", "1", "yes"}
RETRIEVAL_MODES = [
    ("multiple", "Search them all and merge the results"),
    ("single", "Answer from the one that matches best"),
]
MODERATION_TYPES = [("keywords", "Keyword list"), ("openai_moderation", "A moderation model")]


@dataclass
class VariableRow:
    """One input variable as the editor draws it."""

    index: int
    type: str = "text-input"
    variable: str = ""
    label: str = ""
    required: bool = True
    max_length: str = ""
    options: str = ""  # one per line
    errors: dict[str, str] = field(default_factory=dict)


def variable_rows(user_input_form: list) -> list[VariableRow]:
    """The stored user_input_form as editor rows ([{type: {label, variable …}}])."""
    rows = []
    for index, item in enumerate(user_input_form or []):
        if not isinstance(item, dict) or len(item) != 1:
            continue
        kind, spec = next(iter(item.items()))
        if not isinstance(spec, dict):
            continue
        rows.append(
            VariableRow(
                index=index,
                type=kind,
                variable=str(spec.get("variable", "")),
                label=str(spec.get("label", "")),
                required=bool(spec.get("required", False)),
                max_length="" if spec.get("max_length") in (None, "") else str(spec["max_length"]),
                options="\n".join(str(o) for o in spec.get("options") or []),
            )
        )
    return rows


def _flag(data: Mapping[str, Any], name: str) -> bool:
    return str(data.get(name, "")).lower() in TRUE


def _text(data: Mapping[str, Any], name: str) -> str:
    raw = data.get(name, "")
    return raw if isinstance(raw, str) else ""


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class ModelPick:
    """A model the workspace can use, of any type, as "provider/model"."""

    provider: str
    model: str

    @property
    def value(self) -> str:
        return f"{self.provider}/{self.model}"


def usable_picks(*, workspace, model_type: str) -> list[ModelPick]:
    return [
        ModelPick(row.provider, row.model)
        for row in selectors.usable_models(workspace=workspace, model_type=model_type)
    ]


def parameter_controls_with(choice: ModelChoice | None, values: Mapping[str, Any]) -> list:
    """The playground's controls for the model's rules, filled with saved or typed values."""
    controls = []
    for rule in choice.rules if choice else []:
        control = control_for(rule)
        if rule.name in values:
            value = values[rule.name]
            if control.widget == "checkbox":
                control = replace(control, checked=str(value).lower() in TRUE | {"true"})
            elif isinstance(value, bool):
                control = replace(control, value="")
            else:
                control = replace(control, value="" if value is None else str(value))
        controls.append(control)
    return controls


def model_mode(choice: ModelChoice | None) -> str:
    if choice and choice.spec:
        return choice.spec.model_properties.get("mode", "chat")
    return "chat"


@dataclass
class ConfigResult:
    config: dict
    errors: dict[str, str]
    rows: list[VariableRow]
    params: dict  # the typed parameter values, to draw the controls again
    fallback_edit: bool = False  # a fallback list button was pressed: redraw, do not save

    @property
    def valid(self) -> bool:
        return not self.errors


def fallback_chain_edit(chain: list[str], action: str, new: str) -> list[str]:
    """The fallback list ("provider/model" values) after one press of its buttons:
    `add` (the model `new`), `up-<i>`, `down-<i>` or `remove-<i>`."""
    if action == "add":
        if not new:
            raise DomainError("Choose a model to add.")
        return [*chain, new]
    move = FALLBACK_MOVE.match(action)
    if move is None or int(move[2]) >= len(chain):
        return chain
    verb, index = move[1], int(move[2])
    edited = list(chain)
    if verb == "remove":
        del edited[index]
        return edited
    other = index - 1 if verb == "up" else index + 1
    if 0 <= other < len(edited):
        edited[index], edited[other] = edited[other], edited[index]
    return edited


def _fallback_entries(values: list[str]) -> list[dict]:
    entries = []
    for value in values:
        provider, _, name = value.partition("/")
        entries.append({"provider": provider, "name": name})
    return entries


class ConfigForm:
    """Reads the configuration page's POST into a new configuration for `app`."""

    def __init__(self, *, app, membership, data: Mapping[str, Any]):
        self.app = app
        self.membership = membership
        self.workspace = membership.workspace
        self.data = data
        self.errors: dict[str, str] = {}

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def read(self) -> ConfigResult:
        config = copy.deepcopy(self.app.config or {})
        params = self._model(config)
        fallback_edit = self._fallbacks(config)
        rows = self._variables(config)
        self._prompt(config)
        if self.app.mode == AppMode.CHAT:
            self._conversation(config)
        else:
            config["more_like_this"] = {"enabled": _flag(self.data, "more_like_this")}
        self._stop(config)
        self._moderation(config)
        self._annotation_reply(config)
        self._datasets(config)
        return ConfigResult(
            config=config,
            errors=self.errors,
            rows=rows,
            params=params,
            fallback_edit=fallback_edit,
        )

    # --- Model and parameters ----------------------------------------------------------
    def _model(self, config: dict) -> dict:
        value = _text(self.data, "model")
        choices = model_choices(workspace=self.workspace)
        choice = model_choice(choices, value)
        typed = {
            key.removeprefix("param_"): raw
            for key, raw in self.data.items()
            if isinstance(key, str) and key.startswith("param_")
        }
        if choice is None:
            self.error("model", "Choose one of the workspace's models.")
            return typed
        try:
            completion_params = read_parameters(choice.rules, self.data)
        except DomainError as exc:
            self.error("parameters", exc.message)
            return typed
        config["model"] = {
            **(config.get("model") or {}),
            "provider": choice.provider,
            "name": choice.model,
            "mode": model_mode(choice),
            "completion_params": completion_params,
        }
        return typed

    def _fallbacks(self, config: dict) -> bool:
        """The fallback list as the page lists it (fallback-0, fallback-1 …), after the
        edit a list button asks for (fallback_action); True when one was pressed."""
        indices = sorted(
            {int(m.group(1)) for key in self.data if (m := FALLBACK_FIELD.match(str(key)))}
        )
        listed = [_text(self.data, f"fallback-{index}") for index in indices]
        action = _text(self.data, "fallback_action")
        if not isinstance(config.get("model"), dict):
            config["model"] = {}
        try:
            chain = fallback_chain_edit(listed, action, _text(self.data, "fallback_new"))
            config["model"]["fallbacks"] = _fallback_entries(chain)
            fallbacks_check(workspace=self.workspace, config=config)
        except DomainError as exc:
            self.error("fallbacks", exc.message)
            if action:  # the edit is refused: the list stays as it was
                config["model"]["fallbacks"] = _fallback_entries(listed)
        return bool(action)

    # --- Input variables and the prompt -----------------------------------------------
    def _variables(self, config: dict) -> list[VariableRow]:
        indices = sorted({int(m.group(1)) for key in self.data if (m := VAR_FIELD.match(str(key)))})
        rows: list[VariableRow] = []
        form: list[dict] = []
        seen: set[str] = set()
        for index in indices:
            prefix = f"var-{index}-"
            row = VariableRow(
                index=index,
                type=_text(self.data, prefix + "type") or "text-input",
                variable=_text(self.data, prefix + "variable").strip(),
                label=_text(self.data, prefix + "label").strip(),
                required=_flag(self.data, prefix + "required"),
                max_length=_text(self.data, prefix + "max_length").strip(),
                options=_text(self.data, prefix + "options"),
            )
            if _flag(self.data, prefix + "delete") or not (row.variable or row.label):
                continue  # removed, or the blank row left empty
            rows.append(row)
            spec = self._variable(row, seen)
            if spec is not None:
                form.append(spec)
        if len(rows) > MAX_VARIABLES:
            self.error("variables", f"An app can have at most {MAX_VARIABLES} input variables.")
        if any(row.errors for row in rows):
            self.error("variables", "Some input variables need fixing; see below.")
        config["user_input_form"] = form
        return rows

    def _variable(self, row: VariableRow, seen: set[str]) -> dict | None:
        if row.type not in dict(VARIABLE_TYPES):
            row.errors["type"] = "Choose a type from the list."
        if not VARIABLE_NAME.match(row.variable):
            row.errors["variable"] = (
                "Use letters, digits and _ (at most 30), not starting with a digit."
            )
        elif row.variable in seen:
            row.errors["variable"] = "Another variable already has this name."
        seen.add(row.variable)
        if not row.label:
            row.errors["label"] = "Give it a label, shown to the people who use the app."
        elif len(row.label) > 100:
            row.errors["label"] = "At most 100 characters."
        spec: dict[str, Any] = {
            "label": row.label,
            "variable": row.variable,
            "required": row.required,
            "default": "",
        }
        if row.type in ("text-input", "paragraph"):
            if row.max_length:
                try:
                    max_length = int(row.max_length)
                except ValueError:
                    max_length = 0
                if not 1 <= max_length <= 100_000:
                    row.errors["max_length"] = "A whole number between 1 and 100000."
                else:
                    spec["max_length"] = max_length
            elif row.type == "text-input":
                spec["max_length"] = 48  # Dify's default for a short text
        if row.type == "select":
            options = _lines(row.options)
            if not options:
                row.errors["options"] = "List the choices, one per line."
            elif len(options) != len(set(options)):
                row.errors["options"] = "Each choice may appear only once."
            elif len(options) > 100 or any(len(o) > 200 for o in options):
                row.errors["options"] = "At most 100 choices of 200 characters each."
            spec["options"] = options
        return None if row.errors else {row.type: spec}

    def _prompt(self, config: dict) -> None:
        prompt = _text(self.data, "pre_prompt")
        if len(prompt) > MAX_PROMPT_CHARS:
            self.error("pre_prompt", f"At most {MAX_PROMPT_CHARS} characters.")
            return
        config["pre_prompt"] = prompt
        known = {next(iter(item.values()))["variable"] for item in config["user_input_form"]}
        unknown = sorted({name for name in PROMPT_VARIABLE.findall(prompt)} - known)
        if unknown and "variables" not in self.errors:
            names = ", ".join("{{" + name + "}}" for name in unknown)
            self.error("pre_prompt", f"The prompt uses {names}: add it as an input variable.")
        if self.app.mode == AppMode.COMPLETION and not prompt.strip():
            self.error("pre_prompt", "A text generator needs a prompt.")

    # --- Conversation (chat apps) ------------------------------------------------------
    def _conversation(self, config: dict) -> None:
        opening = _text(self.data, "opening_statement").strip()
        if len(opening) > 5000:
            self.error("opening_statement", "At most 5000 characters.")
        config["opening_statement"] = opening
        questions = _lines(_text(self.data, "suggested_questions"))
        if len(questions) > MAX_LINES or any(len(q) > 300 for q in questions):
            self.error("suggested_questions", f"At most {MAX_LINES} questions of 300 characters.")
        config["suggested_questions"] = questions
        config["suggested_questions_after_answer"] = {
            "enabled": _flag(self.data, "suggested_questions_after_answer")
        }
        memory = {"window": {"enabled": False, "size": 10}}
        if _flag(self.data, "memory_window_enabled"):
            size = self._int("memory_window_size", low=1, high=MAX_MEMORY_TURNS)
            if size is not None:
                memory["window"] = {"enabled": True, "size": size}
        tokens = _text(self.data, "memory_max_tokens").strip()
        if tokens:
            limit = self._int("memory_max_tokens", low=100, high=2_000_000)
            context = self._context_size(config)
            if limit is not None and context and limit > context:
                self.error(
                    "memory_max_tokens",
                    f"The model reads at most {context:,} tokens; keep the history below that.",
                )
            elif limit is not None:
                memory["max_tokens"] = limit
        config["memory"] = memory

    def _context_size(self, config: dict) -> int | None:
        model = config.get("model") or {}
        try:
            spec = catalog.provider(model.get("provider", "")).model("llm", model.get("name", ""))
        except KeyError:
            return None
        return spec.context_size if spec else None

    def _int(self, name: str, *, low: int, high: int) -> int | None:
        raw = _text(self.data, name).strip()
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            self.error(name, f"A whole number between {low} and {high}.")
            return None
        return value

    def _float(self, name: str, *, low: float, high: float) -> float | None:
        raw = _text(self.data, name).strip()
        try:
            value = float(raw)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            self.error(name, f"A number between {low:g} and {high:g}.")
            return None
        return value

    def _stop(self, config: dict) -> None:
        stops = [line for line in _text(self.data, "stop").splitlines() if line.strip()]
        if len(stops) > MAX_STOP or any(len(s) > 100 for s in stops):
            self.error("stop", f"At most {MAX_STOP} stop sequences of 100 characters.")
        config["stop"] = [s.replace("\\n", "\n") for s in stops[:MAX_STOP]]

    # --- Moderation, annotation reply, knowledge --------------------------------------
    def _moderation(self, config: dict) -> None:
        enabled = _flag(self.data, "moderation_enabled")
        if not enabled and "moderation_type" not in self.data:
            # Switched off, its fields hidden and not sent: keep them for next time.
            previous = config.get("sensitive_word_avoidance")
            kept = dict(previous) if isinstance(previous, dict) else {}
            config["sensitive_word_avoidance"] = {**kept, "enabled": False}
            return
        kind = _text(self.data, "moderation_type") or "keywords"
        keywords = _text(self.data, "moderation_keywords")
        sections = {}
        for side in ("inputs", "outputs"):
            on = _flag(self.data, f"moderation_{side}_enabled")
            preset = _text(self.data, f"moderation_{side}_preset").strip()
            if len(preset) > MAX_PRESET_CHARS:
                self.error(f"moderation_{side}_preset", f"At most {MAX_PRESET_CHARS} characters.")
            if enabled and on and not preset:
                self.error(f"moderation_{side}_preset", "Write the reply given instead.")
            sections[f"{side}_config"] = {"enabled": on, "preset_response": preset}
        moderation_config: dict[str, Any] = dict(sections)
        if kind not in dict(MODERATION_TYPES):
            self.error("moderation_type", "Choose a type from the list.")
        elif kind == "keywords":
            lines = _lines(keywords)
            if len(lines) > MAX_KEYWORD_LINES or len(keywords) > MAX_KEYWORD_CHARS:
                self.error(
                    "moderation_keywords",
                    f"At most {MAX_KEYWORD_LINES} lines and {MAX_KEYWORD_CHARS} characters.",
                )
            elif enabled and not lines:
                self.error("moderation_keywords", "List the words to block, one per line.")
            moderation_config["keywords"] = "\n".join(lines)
        else:
            value = _text(self.data, "moderation_model")
            picks = usable_picks(workspace=self.workspace, model_type="moderation")
            pick = next((p for p in picks if p.value == value), None)
            if pick is None and enabled:
                self.error("moderation_model", "Choose one of the workspace's moderation models.")
            if pick is not None:
                moderation_config["model"] = {"provider": pick.provider, "name": pick.model}
        if enabled and not any(s["enabled"] for s in sections.values()):
            self.error("moderation_enabled", "Check the input, the output, or both.")
        config["sensitive_word_avoidance"] = {
            "enabled": enabled,
            "type": kind if kind in dict(MODERATION_TYPES) else "keywords",
            "config": moderation_config,
        }

    def _annotation_reply(self, config: dict) -> None:
        enabled = _flag(self.data, "annotation_enabled")
        previous = config.get("annotation_reply")
        previous = dict(previous) if isinstance(previous, dict) else {}
        if not enabled and "annotation_score_threshold" not in self.data:
            # Switched off, its fields hidden and not sent: keep them for next time.
            config["annotation_reply"] = {**previous, "enabled": False}
            return
        reply: dict[str, Any] = {"enabled": enabled}
        threshold = self._float("annotation_score_threshold", low=0.5, high=1.0)
        if threshold is not None:
            reply["score_threshold"] = threshold
        value = _text(self.data, "annotation_embedding_model")
        picks = usable_picks(workspace=self.workspace, model_type="text-embedding")
        pick = next((p for p in picks if p.value == value), None)
        if pick is not None:
            reply["embedding_model"] = {
                "embedding_provider_name": pick.provider,
                "embedding_model_name": pick.model,
            }
        elif enabled:
            self.error("annotation_embedding_model", "Choose an embedding model.")
        config["annotation_reply"] = reply

    def _datasets(self, config: dict) -> None:
        if hasattr(self.data, "getlist"):  # a QueryDict from a form post
            asked = self.data.getlist("datasets")
        else:  # JSON from the debug pane's websocket: one value or a list
            asked = self.data.get("datasets") or []
            asked = [asked] if isinstance(asked, str) else asked
        asked = [a for a in asked if isinstance(a, str)] if isinstance(asked, list) else []
        valid_ids = {
            str(d.pk) for d in knowledge_choices(membership=self.membership, config=config)
        }
        if any(a not in valid_ids for a in asked):
            self.error("datasets", "Choose knowledge bases of this workspace.")
        current = config.get("dataset_configs") or {}
        current = dict(current) if isinstance(current, dict) else {}
        mode = _text(self.data, "retrieval_mode") or current.get("retrieval_model") or "multiple"
        if mode not in dict(RETRIEVAL_MODES):
            self.error("retrieval_mode", "Choose how the knowledge bases are searched.")
            mode = "multiple"
        current["retrieval_model"] = mode
        if _text(self.data, "top_k").strip():
            top_k = self._int("top_k", low=1, high=MAX_TOP_K)
            if top_k is not None:
                current["top_k"] = top_k
        threshold_on = _flag(self.data, "score_threshold_enabled")
        current["score_threshold_enabled"] = threshold_on
        if threshold_on or _text(self.data, "score_threshold").strip():
            threshold = self._float("score_threshold", low=0.0, high=1.0)
            if threshold is not None:
                current["score_threshold"] = threshold
        rerank_on = _flag(self.data, "reranking_enable")
        value = _text(self.data, "reranking_model")
        picks = usable_picks(workspace=self.workspace, model_type="rerank")
        pick = next((p for p in picks if p.value == value), None)
        if pick is not None:
            current["reranking_model"] = {
                "reranking_provider_name": pick.provider,
                "reranking_model_name": pick.model,
            }
        elif value or rerank_on:
            self.error("reranking_model", "Choose one of the workspace's rerank models.")
        current["reranking_enable"] = rerank_on
        if rerank_on:
            current["reranking_mode"] = "reranking_model"
        current["datasets"] = {
            "datasets": [
                {"dataset": {"enabled": True, "id": dataset_id}}
                for dataset_id in dict.fromkeys(asked)
                if dataset_id in valid_ids
            ]
        }
        config["dataset_configs"] = current


def knowledge_choices(*, membership, config: dict) -> list[Dataset]:
    """The knowledge bases this member may attach: those they can see, plus any the app
    already has (attached by someone who could), so a save does not drop them."""
    attached = attached_dataset_ids((config or {}).get("dataset_configs") or {})
    visible = dataset_visible(membership=membership)
    kept = Dataset.objects.for_workspace(membership.workspace).filter(pk__in=attached)
    return list((visible | kept).distinct().order_by("name"))
