"""The provider catalog: the shipped YAML is sound, and a broken catalog says exactly which
file and field are wrong."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from apps.providers import catalog
from apps.providers.catalog import CatalogError, load_catalog, validate_catalog
from apps.providers.schema import I18nText, Pricing

# --- The shipped catalog --------------------------------------------------------------


def test_the_shipped_catalog_has_no_problems():
    assert validate_catalog() == []


def test_the_catalog_offers_at_least_thirty_providers():
    ids = [spec.provider for spec in catalog.providers()]
    assert len(ids) >= 30
    assert len(set(ids)) == len(ids)
    assert ids[:3] == ["openai", "anthropic", "gemini"]  # catalog/_position.yaml


def test_every_provider_has_models_of_exactly_the_types_it_claims():
    for spec in catalog.providers():
        shipped = {model.model_type for model in spec.models}
        assert shipped <= set(spec.supported_model_types), spec.provider
        if "predefined-model" in spec.configurate_methods:
            assert shipped == set(spec.supported_model_types), spec.provider
        else:
            assert spec.model_credential_schema is not None, spec.provider


def test_every_provider_has_an_svg_icon():
    for spec in catalog.providers():
        icon = catalog.icon_path(spec.provider)
        assert icon.read_text(encoding="utf-8").startswith("<svg"), spec.provider


def test_a_template_rule_expands_and_the_yaml_overrides_it():
    gpt_4o = catalog.provider("openai").model("llm", "gpt-4o")

    temperature = gpt_4o.parameter_rule("temperature")
    max_tokens = gpt_4o.parameter_rule("max_tokens")

    assert temperature.type == "float"
    assert (temperature.min, temperature.max, temperature.default) == (0.0, 2.0, 0.7)
    assert temperature.label.text == "Temperature"
    assert max_tokens.max == 16384  # set in gpt-4o.yaml over the template's 4096
    assert gpt_4o.context_size == 128000


def test_models_follow_their_position_file():
    names = [model.model for model in catalog.provider("openai").models_of("llm")]
    assert names[:3] == ["gpt-5", "gpt-5-mini", "gpt-4.1"]


def test_a_deprecated_model_is_marked():
    assert catalog.provider("openai").model("llm", "gpt-3.5-turbo").deprecated
    assert not catalog.provider("openai").model("llm", "gpt-4o").deprecated


def test_only_secret_inputs_are_secret_fields():
    openai = catalog.provider("openai")
    assert openai.secret_fields() == {"openai_api_key"}
    assert openai.secret_fields(for_model=True) == {"openai_api_key"}
    assert catalog.provider("azure_openai").secret_fields() == set()
    assert catalog.provider("local").secret_fields(for_model=True) == set()


def test_an_unknown_provider_is_a_key_error_that_says_so():
    with pytest.raises(KeyError) as caught:
        catalog.provider("nope")
    assert "No model provider 'nope'" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("openai", "openai"),
        ("langgenius/openai/openai", "openai"),
        ("langgenius/openai_api_compatible/openai_api_compatible", "openai_api_compatible"),
        ("google", "gemini"),
        ("langgenius/gemini/google", "gemini"),
        ("azure_openai", "azure_openai"),
        ("langgenius/tongyi/tongyi", "tongyi"),
        ("zhipuai", "zhipuai"),
        ("volcengine_maas", "volcengine_maas"),
        ("nvidia", "nvidia"),
        ("xai", "x"),
        ("LM-Studio", "lm_studio"),
        ("bedrock", None),
        ("langgenius/bedrock/bedrock", None),
    ],
    ids=lambda value: str(value),
)
def test_provider_ids_from_dify_resolve_to_ours(name, expected):
    assert catalog.resolve_provider_id(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("text-generation", "llm"),
        ("embeddings", "text-embedding"),
        ("reranking", "rerank"),
        ("llm", "llm"),
        ("tts", "tts"),
        ("images", None),
    ],
    ids=lambda value: str(value),
)
def test_dify_model_type_names_resolve_to_ours(name, expected):
    assert catalog.resolve_model_type(name) == expected


def test_the_runtime_finds_the_base_url_key_and_upstream_name_in_credentials():
    openai = catalog.provider("openai").runtime
    xinference = catalog.provider("xinference").runtime

    assert openai.base_url_from({}) == "https://api.openai.com/v1"
    assert openai.base_url_from({"openai_api_base": "https://proxy.test/"}) == (
        "https://proxy.test/v1"
    )
    assert openai.base_url_from({"openai_api_base": "https://proxy.test/v1"}) == (
        "https://proxy.test/v1"
    )
    assert openai.api_key_from({"openai_api_key": " sk-1 "}) == "sk-1"
    assert catalog.provider("lm_studio").runtime.api_key_from({"api_key": "x"}) is None
    assert xinference.upstream_model_name("qwen", {"model_uid": "qwen-uid"}) == "qwen-uid"
    assert xinference.upstream_model_name("qwen", {"model_uid": ""}) == "qwen"


# --- Schema pieces --------------------------------------------------------------------


def test_pricing_charges_tokens_times_price_times_unit():
    pricing = Pricing(input="2.5", output="10", unit="0.000001", currency="USD")
    assert pricing.cost(1000, 500) == Decimal("0.0075")


def test_pricing_rounds_each_side_to_seven_places():
    pricing = Pricing(input="0.15", output="0.60", unit="0.000001", currency="USD")
    assert pricing.cost(1, 1) == Decimal("0.0000008")  # 0.00000015 → 2e-7, 6e-7
    assert pricing.cost(1, 1).as_tuple().exponent == -7


def test_text_in_a_missing_language_falls_back_to_english():
    text = I18nText.model_validate("Temperature")
    assert text.text == "Temperature"
    assert text.in_language("zh_Hans") == "Temperature"
    assert I18nText(en_US="Key", zh_Hans="密钥").in_language("zh_Hans") == "密钥"


# --- Broken catalogs ------------------------------------------------------------------

PROVIDER = """\
provider: acme
label: Acme
icon_small: icon_s.svg
supported_model_types: [llm]
configurate_methods: [predefined-model]
provider_credential_schema:
  credential_form_schemas:
    - variable: api_key
      label: API Key
      type: secret-input
      required: true
runtime:
  protocol: openai
  base_url: https://api.acme.test/v1
"""

MODEL = """\
model: chat-1
model_type: llm
model_properties:
  mode: chat
  context_size: 8192
parameter_rules:
  - name: temperature
    use_template: temperature
pricing:
  input: "2.5"
  output: "10"
  unit: "0.000001"
  currency: USD
"""


def write_catalog(
    root: Path,
    *,
    provider: str = PROVIDER,
    models: dict[str, str] | None = None,
    icon: bool = True,
) -> Path:
    folder = root / "acme"
    (folder / "models" / "llm").mkdir(parents=True)
    (folder / "provider.yaml").write_text(provider, encoding="utf-8")
    for name, text in (models if models is not None else {"chat-1.yaml": MODEL}).items():
        (folder / "models" / "llm" / name).write_text(text, encoding="utf-8")
    if icon:
        (folder / "_assets").mkdir()
        (folder / "_assets" / "icon_s.svg").write_text("<svg/>", encoding="utf-8")
    return root


def test_a_sound_catalog_loads(tmp_path):
    (acme,) = load_catalog(write_catalog(tmp_path))
    assert acme.provider == "acme"
    assert acme.model("llm", "chat-1").label.text == "chat-1"  # label defaults to the name
    assert acme.model("llm", "chat-1").fetch_from == "predefined-model"


def model_file(text: str) -> dict:
    return {"models": {"chat-1.yaml": text}}


def model_edit(old: str, new: str) -> dict:
    return model_file(MODEL.replace(old, new))


def provider_edit(old: str, new: str) -> dict:
    return {"provider": PROVIDER.replace(old, new)}


SHOW_ON_UNKNOWN = PROVIDER.replace(
    "      required: true\n",
    "      required: true\n"
    "    - variable: region\n"
    "      label: Region\n"
    "      type: text-input\n"
    "      show_on: [{variable: plan, value: enterprise}]\n",
)

BROKEN = [
    pytest.param(
        model_file("model: chat-1\nmodel_type: [llm\n"),
        ["acme/models/llm/chat-1.yaml: line 3, column 1: invalid YAML"],
        id="bad-yaml-syntax",
    ),
    pytest.param(
        model_file(MODEL + "  discount: '0.5'\n"),
        ["acme/models/llm/chat-1.yaml: pricing.discount: unknown field"],
        id="unknown-field",
    ),
    pytest.param(
        model_edit('"0.000001"', "per-token"),
        ["acme/models/llm/chat-1.yaml: pricing.unit: Input should be a valid decimal"],
        id="wrong-type",
    ),
    pytest.param(
        {"icon": False},
        ["acme/provider.yaml: icon_small: icon file acme/_assets/icon_s.svg does not exist"],
        id="missing-icon",
    ),
    pytest.param(
        {"models": {"chat-1.yaml": MODEL, "chat-1-copy.yaml": MODEL}},
        [
            "acme/models/llm/chat-1.yaml: model: 'chat-1' is already defined in "
            "acme/models/llm/chat-1-copy.yaml"
        ],
        id="duplicate-model",
    ),
    pytest.param(
        {"provider": SHOW_ON_UNKNOWN},
        [
            "acme/provider.yaml: provider_credential_schema.credential_form_schemas[1]"
            ".show_on[0].variable: no field 'plan' in this form"
        ],
        id="show-on-unknown-variable",
    ),
    pytest.param(
        model_edit("model_type: llm", "model_type: rerank"),
        ["acme/models/llm/chat-1.yaml: model_type: 'rerank' does not belong in models/llm/"],
        id="model-in-the-wrong-folder",
    ),
    pytest.param(
        model_edit("use_template: temperature", "use_template: temperature\n    default: 3"),
        ["acme/models/llm/chat-1.yaml: parameter_rules[0].default: default 3.0 is above max 2.0"],
        id="default-outside-the-range",
    ),
    pytest.param(
        model_edit("use_template: temperature", "use_template: heat"),
        ["acme/models/llm/chat-1.yaml: parameter_rules[0].use_template: Input should be"],
        id="unknown-template",
    ),
    pytest.param(
        model_edit("  context_size: 8192\n", ""),
        ["acme/models/llm/chat-1.yaml: llm models need model_properties ['context_size']"],
        id="llm-without-context-size",
    ),
    pytest.param(
        model_file(MODEL + "model: chat-2\n"),
        ["acme/models/llm/chat-1.yaml: line 14, column 1: invalid YAML: duplicate key 'model'"],
        id="duplicate-key",
    ),
    pytest.param(
        provider_edit("supported_model_types: [llm]", "supported_model_types: []"),
        ["acme/provider.yaml: supported_model_types: List should have at least 1 item"],
        id="no-model-types",
    ),
    pytest.param(
        provider_edit("type: secret-input", "type: select"),
        [
            "acme/provider.yaml: provider_credential_schema.credential_form_schemas[0]: "
            "a select field needs at least one option"
        ],
        id="select-without-options",
    ),
]


@pytest.mark.parametrize(("layout", "expected"), BROKEN)
def test_a_broken_catalog_names_the_file_and_the_field(tmp_path, layout, expected):
    root = write_catalog(tmp_path, **layout)

    with pytest.raises(CatalogError) as caught:
        load_catalog(root)

    for message in expected:
        assert any(problem.startswith(message) for problem in caught.value.problems), (
            caught.value.problems
        )
        assert message in str(caught.value)


def test_every_problem_is_reported_at_once(tmp_path):
    root = write_catalog(
        tmp_path,
        models={
            "chat-1.yaml": MODEL.replace("mode: chat", "mode: talk"),
            "chat-2.yaml": MODEL.replace("chat-1", "chat-2").replace("USD", "dollars"),
        },
        icon=False,
    )

    problems = validate_catalog(root)

    assert len(problems) == 3, problems
    assert problems[0].startswith("acme/models/llm/chat-1.yaml: model_properties.mode:")
    assert problems[1].startswith("acme/models/llm/chat-2.yaml: pricing.currency:")
    assert "icon_small" in problems[2]
    with pytest.raises(CatalogError, match="3 problems in the provider catalog"):
        load_catalog(root)


def test_position_files_must_name_real_entries(tmp_path):
    root = write_catalog(tmp_path)
    (root / "_position.yaml").write_text("- acme\n- ghost\n", encoding="utf-8")
    (root / "acme" / "models" / "llm" / "_position.yaml").write_text("- chat-9\n")

    problems = validate_catalog(root)

    assert "_position.yaml: [1]: no provider 'ghost' in the catalog" in problems
    assert "acme/models/llm/_position.yaml: [0]: no model 'chat-9' in this folder" in problems


def test_the_runtime_must_point_at_real_credential_fields(tmp_path):
    provider = PROVIDER + "  api_key_field: token\n  base_url_field: endpoint_url\n"

    problems = validate_catalog(write_catalog(tmp_path, provider=provider))

    assert problems == [
        "acme/provider.yaml: runtime.api_key_field: no credential field 'token'",
        "acme/provider.yaml: runtime.base_url_field: no credential field 'endpoint_url'",
    ]
