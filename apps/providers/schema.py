"""The provider catalog's YAML, as typed objects.

Field names follow Dify's provider and model YAML (the form types, model types, feature
names and `use_template` keys are the same), so credentials and exported apps carry over.
`runtime:` is ours: it tells the adapter layer which wire protocol a provider speaks and
where, so an OpenAI-compatible vendor is a folder of YAML and no Python.

Everything is strict (`extra="forbid"`) except translated text, which takes any language
key. Objects are frozen: the catalog is loaded once and shared by every request."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, Literal, Required, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict

ModelType = Literal["llm", "text-embedding", "rerank", "speech2text", "tts", "moderation"]
MODEL_TYPES: tuple[str, ...] = get_args(ModelType)

ConfigurateMethod = Literal["predefined-model", "customizable-model", "fetch-from-remote"]
FetchFrom = Literal["predefined-model", "customizable-model"]
FormType = Literal["text-input", "secret-input", "select", "radio", "switch"]
RuleType = Literal["float", "int", "string", "boolean", "text"]
Feature = Literal[
    "tool-call",
    "multi-tool-call",
    "stream-tool-call",
    "agent-thought",
    "vision",
    "structured-output",
    "document",
    "audio",
    "video",
]
Protocol = Literal[
    "openai",
    "azure_openai",
    "anthropic",
    "gemini",
    "ollama",
    "cohere",
    "jina",
    "voyage",
    "tei",
    "local",
]
TemplateName = Literal[
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
    "seed",
]

# A show_on condition on this pseudo-variable matches the type of model being configured
# (Dify's convention), so one model credential form can serve several model types.
MODEL_TYPE_VARIABLE = "__model_type"

PRICE_QUANTUM = Decimal("0.0000001")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class I18nText(BaseModel):
    """Text in several languages. `en_US` is required and is what `.text` returns; a plain
    string in the YAML is read as English."""

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, str]

    en_US: str = Field(min_length=1)
    zh_Hans: str | None = None
    ja_JP: str | None = None
    pt_BR: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_string_is_english(cls, data: Any) -> Any:
        return {"en_US": data} if isinstance(data, str) else data

    @property
    def text(self) -> str:
        return self.en_US

    def in_language(self, language: str) -> str:
        """The text in `language` (e.g. "zh_Hans"), or English when there is none."""
        if language in type(self).model_fields:
            value = getattr(self, language)
        else:
            value = (self.model_extra or {}).get(language)
        return value or self.en_US


def _as_form_value(value: Any) -> Any:
    # YAML reads `true` and `4096` as a bool and an int; form values are always strings,
    # and switches hold "true"/"false" (as Dify stores them).
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return value


FormValue = Annotated[str, BeforeValidator(_as_form_value)]
Variable = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class ShowOn(_Strict):
    """Show a field (or option) only while another field holds this value."""

    variable: Variable
    value: FormValue


class FormOption(_Strict):
    value: FormValue
    label: I18nText
    show_on: list[ShowOn] = []


class CredentialField(_Strict):
    variable: Variable
    label: I18nText
    type: FormType
    required: bool = False
    default: FormValue | None = None
    options: list[FormOption] = []
    placeholder: I18nText | None = None
    help: I18nText | None = None
    show_on: list[ShowOn] = []
    max_length: int = Field(0, ge=0)  # 0: no limit

    @model_validator(mode="after")
    def _options_fit_the_type(self) -> CredentialField:
        if self.type in ("select", "radio"):
            if not self.options:
                raise ValueError(f"a {self.type} field needs at least one option")
            values = [option.value for option in self.options]
            if len(set(values)) != len(values):
                raise ValueError("option values must be unique")
            if self.default is not None and self.default not in values:
                raise ValueError(f"default {self.default!r} is not one of the options {values}")
        elif self.options:
            raise ValueError(f"a {self.type} field takes no options")
        if self.type == "switch" and self.default not in (None, "true", "false"):
            raise ValueError("a switch's default must be true or false")
        if self.max_length and self.default is not None and len(self.default) > self.max_length:
            raise ValueError(f"default is longer than max_length {self.max_length}")
        return self


class ProviderCredentialSchema(_Strict):
    credential_form_schemas: list[CredentialField] = []


class ModelNameField(_Strict):
    """How the form asks for the model's name when a user adds a custom model."""

    label: I18nText
    placeholder: I18nText | None = None


class ModelCredentialSchema(_Strict):
    model: ModelNameField
    credential_form_schemas: list[CredentialField] = []


def _label(en: str, zh: str) -> dict[str, str]:
    return {"en_US": en, "zh_Hans": zh}


# Our defaults for `use_template`. A model's YAML overrides any of these keys; vendors whose
# range differs (e.g. a temperature capped at 1) say so in the model's file.
PARAMETER_TEMPLATES: Mapping[str, Mapping[str, Any]] = {
    "temperature": {
        "label": _label("Temperature", "温度"),
        "type": "float",
        "default": 0.7,
        "min": 0.0,
        "max": 2.0,
        "precision": 2,
        "help": {"en_US": "Higher values make answers more varied, lower more focused."},
    },
    "top_p": {
        "label": _label("Top P", "Top P"),
        "type": "float",
        "default": 1.0,
        "min": 0.0,
        "max": 1.0,
        "precision": 2,
        "help": {
            "en_US": "Sample only from the most likely tokens whose probabilities add up to "
            "this share."
        },
    },
    "top_k": {
        "label": _label("Top K", "Top K"),
        "type": "int",
        "default": 40,
        "min": 1,
        "max": 100,
        "precision": 0,
        "help": {"en_US": "Sample only from this many of the most likely tokens."},
    },
    "max_tokens": {
        "label": _label("Max tokens", "最大 token 数"),
        "type": "int",
        "default": 1024,
        "min": 1,
        "max": 4096,
        "precision": 0,
        "help": {"en_US": "The longest answer the model may write, in tokens."},
    },
    "presence_penalty": {
        "label": _label("Presence penalty", "存在惩罚"),
        "type": "float",
        "default": 0.0,
        "min": -2.0,
        "max": 2.0,
        "precision": 1,
        "help": {"en_US": "Positive values nudge the model towards topics it has not used."},
    },
    "frequency_penalty": {
        "label": _label("Frequency penalty", "频率惩罚"),
        "type": "float",
        "default": 0.0,
        "min": -2.0,
        "max": 2.0,
        "precision": 1,
        "help": {"en_US": "Positive values discourage repeating the same words."},
    },
    "response_format": {
        "label": _label("Response format", "回复格式"),
        "type": "string",
        "options": ["text", "json_object"],
        "help": {"en_US": "Plain text, or a single JSON object."},
    },
    "seed": {
        "label": _label("Seed", "随机种子"),
        "type": "int",
        "min": 0,
        "precision": 0,
        "help": {
            "en_US": "With the same seed and settings the model tries to answer the same way."
        },
    },
}


class ParameterRule(_Strict):
    """One invocation parameter a model accepts, with its range and default for the UI.

    `use_template` fills in every key the rule leaves out from PARAMETER_TEMPLATES; keys
    the YAML sets win. A rule without a label is labelled with its name."""

    name: str = Field(min_length=1)
    use_template: TemplateName | None = None
    label: I18nText
    type: RuleType
    help: I18nText | None = None
    required: bool = False
    min: float | None = None
    max: float | None = None
    precision: int | None = Field(None, ge=0)
    options: list[str] = []
    default: Any = None  # checked against type, range and options below

    @model_validator(mode="before")
    @classmethod
    def _expand_template(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        name = data.get("use_template")
        template = PARAMETER_TEMPLATES.get(name) if isinstance(name, str) else None
        if template is not None:
            data = {**template, **data}
        if "label" not in data and isinstance(data.get("name"), str):
            data = {**data, "label": data["name"]}
        return data

    @field_validator("default")
    @classmethod
    def _default_fits(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("type")
        if value is None or kind is None:
            return value
        if kind == "boolean":
            if not isinstance(value, bool):
                raise ValueError("a boolean rule's default must be true or false")
        elif kind in ("int", "float"):
            whole = isinstance(value, int) and not isinstance(value, bool)
            if kind == "int" and not whole:
                raise ValueError("an int rule's default must be a whole number")
            if kind == "float":
                if not whole and not isinstance(value, float):
                    raise ValueError("a float rule's default must be a number")
                value = float(value)
            low, high = info.data.get("min"), info.data.get("max")
            if low is not None and value < low:
                raise ValueError(f"default {value} is below min {low}")
            if high is not None and value > high:
                raise ValueError(f"default {value} is above max {high}")
        elif not isinstance(value, str):
            raise ValueError(f"a {kind} rule's default must be a string")
        options = info.data.get("options") or []
        if options and value not in options:
            raise ValueError(f"default {value!r} is not one of the options {options}")
        return value

    @model_validator(mode="after")
    def _range_and_options(self) -> ParameterRule:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if self.options and self.type != "string":
            raise ValueError("only string rules take options")
        return self


class Pricing(_Strict):
    """Price per token, as in Dify: `input` and `output` are prices per `unit` tokens'
    worth, e.g. input 2.5 with unit 0.000001 is 2.50 per million tokens."""

    input: Decimal = Field(ge=0)
    output: Decimal = Field(Decimal(0), ge=0)
    unit: Decimal = Field(gt=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")

    def cost(self, input_tokens: int, output_tokens: int = 0) -> Decimal:
        """What a call cost: tokens × price × unit, each side rounded to 7 decimal places."""
        return _quantise(input_tokens * self.input * self.unit) + _quantise(
            output_tokens * self.output * self.unit
        )


def _quantise(amount: Decimal) -> Decimal:
    return amount.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP)


@with_config(ConfigDict(extra="forbid"))
class Voice(TypedDict, total=False):
    mode: Required[str]  # the voice id sent to the provider (Dify's key name)
    name: Required[str]
    language: list[str]


@with_config(ConfigDict(extra="forbid"))
class ModelProperties(TypedDict, total=False):
    """The keys Dify's model_properties knows; a plain dict at run time."""

    mode: Literal["chat", "completion"]
    context_size: Annotated[int, Field(gt=0)]
    max_chunks: Annotated[int, Field(gt=0)]  # inputs per embedding/moderation request
    file_upload_limit: Annotated[int, Field(gt=0)]  # MB
    supported_file_extensions: str  # comma-separated
    max_characters_per_chunk: Annotated[int, Field(gt=0)]
    default_voice: str
    voices: list[Voice]
    word_limit: Annotated[int, Field(gt=0)]  # characters per speech request
    audio_type: str
    max_workers: Annotated[int, Field(gt=0)]


class ModelSpec(_Strict):
    model: str = Field(min_length=1)
    label: I18nText
    model_type: ModelType
    features: list[Feature] = []
    fetch_from: FetchFrom | None = None
    model_properties: ModelProperties = {}
    parameter_rules: list[ParameterRule] = []
    pricing: Pricing | None = None
    deprecated: bool = False

    @model_validator(mode="before")
    @classmethod
    def _label_defaults_to_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and "label" not in data and isinstance(data.get("model"), str):
            return {**data, "label": data["model"]}
        return data

    @model_validator(mode="after")
    def _properties_fit_the_type(self) -> ModelSpec:
        props = self.model_properties
        required = {
            "llm": ("mode", "context_size"),
            "text-embedding": ("context_size",),
            "tts": ("default_voice", "voices"),
        }.get(self.model_type, ())
        missing = [key for key in required if key not in props]
        if missing:
            raise ValueError(f"{self.model_type} models need model_properties {missing}")
        if self.model_type == "tts":
            voices = [voice["mode"] for voice in props["voices"]]
            if props["default_voice"] not in voices:
                raise ValueError(f"default_voice {props['default_voice']!r} is not in voices")
        if len(set(self.features)) != len(self.features):
            raise ValueError("features are listed more than once")
        names = [rule.name for rule in self.parameter_rules]
        if len(set(names)) != len(names):
            raise ValueError("parameter rule names must be unique")
        return self

    @property
    def context_size(self) -> int | None:
        return self.model_properties.get("context_size")

    def parameter_rule(self, name: str) -> ParameterRule | None:
        return next((rule for rule in self.parameter_rules if rule.name == name), None)


class RuntimeSpec(_Strict):
    """Ours, not Dify's: how the adapter layer reaches this provider without vendor code.

    The base URL is the credential named by `base_url_field` when the user filled it in
    (with `base_url_suffix` appended when it lacks it, so a URL saved by Dify without
    "/v1" still works), else the vendor's `base_url`. The API key is the credential named
    by `api_key_field`; the name sent upstream is the credential named by
    `model_name_field` when set (an Azure deployment, an Ark endpoint id), else the
    model's own name."""

    protocol: Protocol
    base_url: str | None = Field(None, pattern=r"^https?://")
    api_key_field: Variable | None = "api_key"
    base_url_field: Variable | None = None
    base_url_suffix: str = Field("", pattern=r"^(/[A-Za-z0-9._-]+)*$")
    model_name_field: Variable | None = None
    models_endpoint: bool = False

    def base_url_from(self, credentials: Mapping[str, Any]) -> str | None:
        given = str(credentials.get(self.base_url_field) or "").strip()
        if self.base_url_field and given:
            given = given.rstrip("/")
            if self.base_url_suffix and not given.endswith(self.base_url_suffix):
                given += self.base_url_suffix
            return given
        return self.base_url

    def api_key_from(self, credentials: Mapping[str, Any]) -> str | None:
        if not self.api_key_field:
            return None
        return str(credentials.get(self.api_key_field) or "").strip() or None

    def upstream_model_name(self, model: str, credentials: Mapping[str, Any]) -> str:
        if self.model_name_field:
            return str(credentials.get(self.model_name_field) or "").strip() or model
        return model


class ProviderHelp(_Strict):
    title: I18nText
    url: I18nText


class ProviderSpec(_Strict):
    provider: str = Field(pattern=r"^[a-z0-9][a-z0-9_]*$")
    label: I18nText
    description: I18nText | None = None
    icon_small: str = Field(pattern=r"^[A-Za-z0-9_.-]+\.(svg|png)$")  # in _assets/
    icon_large: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+\.(svg|png)$")
    background: str | None = Field(None, pattern=r"^#[0-9A-Fa-f]{6}$")
    help: ProviderHelp | None = None
    supported_model_types: list[ModelType] = Field(min_length=1)
    configurate_methods: list[ConfigurateMethod] = Field(min_length=1)
    provider_credential_schema: ProviderCredentialSchema | None = None
    model_credential_schema: ModelCredentialSchema | None = None
    runtime: RuntimeSpec
    models: list[ModelSpec] = []  # filled by the loader from models/<type>/*.yaml

    def models_of(self, model_type: str) -> list[ModelSpec]:
        return [model for model in self.models if model.model_type == model_type]

    def model(self, model_type: str, name: str) -> ModelSpec | None:
        return next((m for m in self.models_of(model_type) if m.model == name), None)

    def credential_fields(self, *, for_model: bool = False) -> list[CredentialField]:
        schema = self.model_credential_schema if for_model else self.provider_credential_schema
        return list(schema.credential_form_schemas) if schema else []

    def secret_fields(self, for_model: bool = False) -> set[str]:
        """Variables to encrypt at rest and mask on the way out: only secret-input ones."""
        return {
            field.variable
            for field in self.credential_fields(for_model=for_model)
            if field.type == "secret-input"
        }
