"""Dify DSL files import as apps and apps export as DSL files: real Dify 1.x and 0.x
exports, an Orrery round trip, and files that must be refused with a reason."""

import re

import pytest
import yaml

from apps.chat import dsl, keys
from apps.chat.config import default_config
from apps.chat.models import App
from apps.chat.services import apps as app_services
from apps.core.errors import DomainError, PermissionDenied
from apps.datasets.models import Dataset
from apps.providers import services as provider_services
from apps.tenants.models import Role

pytestmark = pytest.mark.django_db

# A chat assistant as Dify 1.x exports it: plugin ids for providers, marketplace
# dependencies with version and checksum, every app_model_config key.
DIFY_1X_CHAT = """\
app:
  description: Answers questions about our return policy.
  icon: 🛍️
  icon_background: '#FFEAD5'
  icon_type: emoji
  mode: chat
  name: Returns helper
  use_icon_as_answer_icon: false
dependencies:
- current_identifier: null
  type: marketplace
  value:
    marketplace_plugin_unique_identifier: "langgenius/openai:0.0.26@\
c1e643ac6a7732f6333a783320b4d3026fa5e31d8e7026375b98d44418d33f26"
    version: null
kind: app
model_config:
  agent_mode:
    enabled: false
    max_iteration: 5
    strategy: function_call
    tools: []
  annotation_reply:
    enabled: false
  chat_prompt_config: {}
  completion_prompt_config: {}
  dataset_configs:
    datasets:
      datasets: []
    reranking_enable: false
    retrieval_model: multiple
    top_k: 4
  dataset_query_variable: ''
  external_data_tools: []
  file_upload:
    allowed_file_extensions:
    - .JPG
    - .PNG
    allowed_file_types:
    - image
    allowed_file_upload_methods:
    - remote_url
    - local_file
    enabled: false
    image:
      detail: high
      enabled: false
      number_limits: 3
      transfer_methods:
      - remote_url
      - local_file
    number_limits: 3
  model:
    completion_params:
      max_tokens: 512
      stop: []
      temperature: 0.2
    mode: chat
    name: gpt-4o-mini
    provider: langgenius/openai/openai
  more_like_this:
    enabled: false
  opening_statement: Hi! Ask me about returns, {{customer_name}}.
  pre_prompt: 'You help {{customer_name}} with returns. Be brief.'
  prompt_type: simple
  retriever_resource:
    enabled: true
  sensitive_word_avoidance:
    configs: []
    enabled: false
    type: ''
  speech_to_text:
    enabled: false
  suggested_questions:
  - How long do I have to return a jacket?
  suggested_questions_after_answer:
    enabled: true
  text_to_speech:
    enabled: false
    language: ''
    voice: ''
  user_input_form:
  - text-input:
      default: ''
      label: Customer name
      max_length: 48
      required: true
      variable: customer_name
version: 0.1.5
"""

# A text generator as Dify 0.x (before plugins) exported it: short provider names, no
# dependencies.
DIFY_0X_COMPLETION = """\
app:
  description: ''
  icon: "\\U0001F4DD"
  icon_background: '#D1E0FF'
  mode: completion
  name: Tagline writer
kind: app
model_config:
  agent_mode:
    enabled: false
    tools: []
  annotation_reply:
    enabled: false
  chat_prompt_config: {}
  completion_prompt_config: {}
  dataset_configs:
    datasets:
      datasets: []
    retrieval_model: single
  dataset_query_variable: ''
  external_data_tools: []
  file_upload:
    image:
      detail: high
      enabled: false
      number_limits: 3
      transfer_methods:
      - remote_url
      - local_file
  model:
    completion_params:
      frequency_penalty: 0
      max_tokens: 256
      presence_penalty: 0
      stop: []
      temperature: 0.9
      top_p: 1
    mode: chat
    name: gpt-3.5-turbo
    provider: openai
  more_like_this:
    enabled: true
  opening_statement: ''
  pre_prompt: Write three taglines for {{product}} in a {{tone}} tone.
  prompt_type: simple
  retriever_resource:
    enabled: false
  sensitive_word_avoidance:
    config:
      inputs_config:
        enabled: true
        preset_response: Let's keep it friendly.
      keywords: darn
      outputs_config:
        enabled: false
    enabled: true
    type: keywords
  speech_to_text:
    enabled: false
  suggested_questions: []
  suggested_questions_after_answer:
    enabled: false
  text_to_speech:
    enabled: false
  user_input_form:
  - text-input:
      default: ''
      label: Product
      max_length: 100
      required: true
      variable: product
  - select:
      default: ''
      label: Tone
      options:
      - playful
      - serious
      required: false
      variable: tone
version: 0.1.2
"""


def _owner(team):
    return team.members[Role.OWNER]


def _with_openai(team):
    provider_services.provider_credentials_save(
        actor=_owner(team),
        provider="openai",
        credentials={"openai_api_key": "sk-test-not-used-0000"},
        validate=False,
    )


def _file(**changes) -> str:
    document = yaml.safe_load(DIFY_1X_CHAT)
    for dotted, value in changes.items():
        holder = document
        *path, last = dotted.split("__")
        for part in path:
            holder = holder[part]
        if value is None:
            holder.pop(last, None)
        else:
            holder[last] = value
    return yaml.safe_dump(document, allow_unicode=True)


def test_a_dify_1x_chat_export_imports_with_plugin_ids_mapped(team):
    _with_openai(team)
    app, warnings = dsl.app_import(actor=_owner(team), yaml_text=DIFY_1X_CHAT)
    app.refresh_from_db()
    assert warnings == []
    assert (app.name, app.mode, app.icon, app.icon_background) == (
        "Returns helper",
        "chat",
        "🛍️",
        "#FFEAD5",
    )
    assert app.workspace == team.workspace
    assert app.config["model"] == {
        "provider": "openai",
        "name": "gpt-4o-mini",
        "mode": "chat",
        "completion_params": {"max_tokens": 512, "stop": [], "temperature": 0.2},
    }
    assert app.config["pre_prompt"] == "You help {{customer_name}} with returns. Be brief."
    assert app.config["user_input_form"][0]["text-input"]["variable"] == "customer_name"
    assert app.config["suggested_questions"] == ["How long do I have to return a jacket?"]
    assert app.config["suggested_questions_after_answer"] == {"enabled": True}


def test_a_dify_0x_completion_export_imports_with_short_provider_names(team):
    _with_openai(team)
    app, warnings = dsl.app_import(actor=_owner(team), yaml_text=DIFY_0X_COMPLETION)
    assert warnings == []
    assert (app.name, app.mode, app.icon) == ("Tagline writer", "completion", "📝")
    assert app.config["model"]["provider"] == "openai"
    assert app.config["model"]["name"] == "gpt-3.5-turbo"
    assert app.config["more_like_this"] == {"enabled": True}
    assert app.config["sensitive_word_avoidance"]["config"]["keywords"] == "darn"
    assert [list(f)[0] for f in app.config["user_input_form"]] == ["text-input", "select"]


@pytest.mark.parametrize(
    ("given", "ours", "model"),
    [
        ("langgenius/openai_api_compatible/openai_api_compatible", "openai_api_compatible", "m"),
        ("langgenius/gemini/google", "gemini", "gemini-2.5-flash"),
        ("google", "gemini", "gemini-2.5-flash"),
        ("langgenius/anthropic/anthropic", "anthropic", "claude-3-5-haiku-20241022"),
        ("ollama", "ollama", "llama3.2"),
    ],
    ids=["openai-compatible-plugin", "gemini-plugin", "google-short", "anthropic", "ollama"],
)
def test_provider_names_of_both_eras_map_to_ours(team, given, ours, model):
    text = _file(model_config__model={"provider": given, "name": model, "mode": "chat"})
    app, warnings = dsl.app_import(actor=_owner(team), yaml_text=text)
    assert app.config["model"]["provider"] == ours
    assert app.config["model"]["name"] == model
    # Nothing is set up in this workspace, and the importer says so.
    assert any("not set up in this workspace" in w for w in warnings)


def test_an_unknown_provider_imports_with_a_warning_and_no_model(team):
    text = _file(
        model_config__model={"provider": "acme/rocket/rocket", "name": "r1", "mode": "chat"}
    )
    app, warnings = dsl.app_import(actor=_owner(team), yaml_text=text)
    assert App.objects.for_workspace(team.workspace).filter(pk=app.pk).exists()
    assert app.config["model"]["provider"] == "" and app.config["model"]["name"] == ""
    assert len(warnings) == 1
    assert "'acme/rocket/rocket' is not one Orrery knows" in warnings[0] and "r1" in warnings[0]


def test_an_unknown_model_of_a_fixed_list_provider_is_left_to_choose(team):
    model = {"provider": "deepseek", "name": "deepseek-v9", "mode": "chat"}
    text = _file(model_config__model=model)
    app, warnings = dsl.app_import(actor=_owner(team), yaml_text=text)
    assert app.config["model"] == {
        "provider": "deepseek",
        "name": "",
        "mode": "chat",
        "completion_params": {},
    }
    assert any("no model 'deepseek-v9'" in w for w in warnings)


def test_export_then_import_gives_the_same_configuration(team):
    owner = _owner(team)
    _with_openai(team)
    app = app_services.app_create(
        actor=owner, name="Ops bot", mode="chat", description="On call helper", icon="🛠️"
    )
    config = {
        **app.config,
        "model": {
            "provider": "openai",
            "name": "gpt-4o",
            "mode": "chat",
            "completion_params": {"temperature": 0.3, "max_tokens": 800},
        },
        "pre_prompt": "You are on call for {{team}}.",
        "user_input_form": [{"select": {"variable": "team", "label": "Team", "options": ["a"]}}],
        "opening_statement": "What broke?",
        "memory": {"window": {"enabled": True, "size": 6}},
        "stop": ["###"],
        "annotation_reply": {
            "enabled": True,
            "score_threshold": 0.9,
            "embedding_model": {
                "embedding_provider_name": "openai",
                "embedding_model_name": "text-embedding-3-small",
            },
        },
    }
    app = app_services.app_update(actor=owner, app=app, config=config)

    text = dsl.app_export(app=app)
    document = yaml.safe_load(text)
    assert document["kind"] == "app" and document["version"] == dsl.DSL_VERSION
    assert document["app"] == {
        "name": "Ops bot",
        "mode": "chat",
        "icon": "🛠️",
        "icon_type": "emoji",
        "icon_background": app.icon_background,
        "description": "On call helper",
        "use_icon_as_answer_icon": False,
    }
    assert document["model_config"]["model"]["provider"] == "langgenius/openai/openai"
    embedding = document["model_config"]["annotation_reply"]["embedding_model"]
    assert embedding["embedding_provider_name"] == "langgenius/openai/openai"
    assert document["dependencies"] == [
        {
            "current_identifier": None,
            "type": "marketplace",
            "value": {
                "marketplace_plugin_unique_identifier": "langgenius/openai:0.3.5@"
                "dcc15b5847dbe38c64c2a9fdc1ea2d46466b7028eb4766b251bc363b0eec3af3",
                "version": None,
            },
        }
    ]

    copy, warnings = dsl.app_import(actor=owner, yaml_text=text)
    assert warnings == []
    assert copy.pk != app.pk and copy.site_code != app.site_code
    assert copy.config == app.config
    assert (copy.name, copy.description, copy.icon) == ("Ops bot", "On call helper", "🛠️")


def test_the_fallback_chain_survives_export_and_import(team):
    owner = _owner(team)
    _with_openai(team)
    provider_services.provider_credentials_save(
        actor=owner, provider="deepseek", credentials={"api_key": "sk-ds-not-used"}, validate=False
    )
    app = app_services.app_create(actor=owner, name="Sturdy", mode="chat")
    chain = [
        {"provider": "deepseek", "name": "deepseek-chat"},
        {"provider": "openai", "name": "gpt-4o-mini"},
    ]
    main = {"provider": "openai", "name": "gpt-4o", "fallbacks": chain}
    config = {**app.config, "model": {**app.config["model"], **main}}
    app = app_services.app_update(actor=owner, app=app, config=config)

    document = yaml.safe_load(dsl.app_export(app=app))
    exported = document["model_config"]["model"]["fallbacks"]
    assert exported == [
        {"provider": "langgenius/deepseek/deepseek", "name": "deepseek-chat"},
        {"provider": "langgenius/openai/openai", "name": "gpt-4o-mini"},
    ]
    packages = [
        d["value"]["marketplace_plugin_unique_identifier"] for d in document["dependencies"]
    ]
    assert [p.split(":")[0] for p in packages] == ["langgenius/openai", "langgenius/deepseek"]

    copy, warnings = dsl.app_import(actor=owner, yaml_text=yaml.safe_dump(document))
    assert warnings == []
    assert copy.config["model"]["fallbacks"] == chain
    assert copy.config == app.config


@pytest.mark.parametrize(
    ("fallback", "kept", "warning"),
    [
        (
            {"provider": "langgenius/anthropic/anthropic", "name": "claude-3-5-haiku-20241022"},
            {"provider": "anthropic", "name": "claude-3-5-haiku-20241022"},
            "Anthropic is not set up in this workspace",
        ),
        (
            {"provider": "acme/rocket/rocket", "name": "r1"},
            None,
            "acme/rocket/rocket/r1 was left out: Orrery does not know its provider",
        ),
        (
            {"provider": "deepseek", "name": "deepseek-v9"},
            None,
            "deepseek/deepseek-v9 was left out: DeepSeek has no such model",
        ),
        (
            {"provider": "langgenius/openai/openai", "name": "gpt-4o-mini"},
            None,
            "openai/gpt-4o-mini is the app's model or listed already",
        ),
        ("openai/gpt-4o", None, "without a provider and a model name"),
    ],
    ids=["not-set-up-kept", "unknown-provider", "unknown-model", "the-main-model", "malformed"],
)
def test_an_imported_fallback_is_kept_on_the_main_models_terms(team, fallback, kept, warning):
    _with_openai(team)
    model = {"provider": "openai", "name": "gpt-4o-mini", "mode": "chat", "fallbacks": [fallback]}
    app, warnings = dsl.app_import(actor=_owner(team), yaml_text=_file(model_config__model=model))
    assert app.config["model"]["fallbacks"] == ([kept] if kept else [])
    assert any(warning in w for w in warnings), warnings


def test_an_imported_chain_longer_than_the_limit_is_cut(team):
    _with_openai(team)
    names = ["gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-5-mini"]
    model = {
        "provider": "openai",
        "name": "gpt-4o-mini",
        "fallbacks": [{"provider": "openai", "name": n} for n in names],
    }
    app, warnings = dsl.app_import(actor=_owner(team), yaml_text=_file(model_config__model=model))
    assert [f["name"] for f in app.config["model"]["fallbacks"]] == names[:3]
    assert warnings == ["The fallback model openai/gpt-5-mini was left out: an app has at most 3."]


# Dify's plugin daemon accepts a dependency only as author/plugin:version@checksum.
DAEMON_IDENTIFIER = re.compile(
    r"^(?:([a-z0-9_-]{1,64})/)?([a-z0-9_-]{1,255}):([0-9]{1,4})(\.[0-9]{1,4}){1,3}"
    r"(-\w{1,16})?@[a-f0-9]{32,64}$"
)


@pytest.mark.parametrize(
    ("provider", "model", "plugin"),
    [
        ("openai", "gpt-4o-mini", "langgenius/openai"),
        ("gemini", "gemini-2.0-flash", "langgenius/gemini"),
        ("deepseek", "deepseek-chat", "langgenius/deepseek"),
    ],
    ids=["openai", "gemini-named-google", "deepseek"],
)
def test_dependencies_name_a_released_marketplace_package(team, provider, model, plugin):
    config = default_config("chat", provider=provider, model=model)
    app = app_services.app_create(actor=_owner(team), name="Dep", mode="chat", config=config)
    document = yaml.safe_load(dsl.app_export(app=app))
    assert document["version"] == "0.7.0"
    [dependency] = document["dependencies"]
    assert set(dependency) == {"current_identifier", "type", "value"}
    identifier = dependency["value"]["marketplace_plugin_unique_identifier"]
    assert identifier.startswith(f"{plugin}:") and DAEMON_IDENTIFIER.match(identifier)


def test_a_provider_without_a_known_package_is_left_out_of_dependencies(team):
    config = default_config("chat", provider="anthropic", model="claude-3-5-haiku-latest")
    app = app_services.app_create(actor=_owner(team), name="Dep", mode="chat", config=config)
    document = yaml.safe_load(dsl.app_export(app=app))
    assert document["model_config"]["model"]["provider"] == "langgenius/anthropic/anthropic"
    assert document["dependencies"] == []


@pytest.mark.parametrize("version", ["0.1.0", "0.1.5", "0.2.0", "0.3.0", "0.5.0", "0.6.0", "0.7.0"])
def test_every_dify_1x_version_up_to_the_current_imports_without_a_warning(team, version):
    app, warnings = dsl.app_import(actor=_owner(team), yaml_text=_file(version=version))
    assert app.pk and not any("version" in w for w in warnings)


def test_export_carries_no_key_id_or_public_link(team):
    owner = _owner(team)
    _with_openai(team)
    app = app_services.app_create(actor=owner, name="Secretive", mode="chat")
    config = {**app.config, "agent_mode": {"enabled": False, "tools": [{"credential_id": "c1"}]}}
    app = app_services.app_update(actor=owner, app=app, config=config)
    _, raw_key = keys.app_api_key_create(actor=owner, app=app)
    text = dsl.app_export(app=app)
    for secret in (raw_key, raw_key[:12], app.site_code, str(app.pk), str(team.workspace.pk)):
        assert secret not in text
    assert "sk-test-not-used" not in text
    assert "credential_id" not in text


def test_fields_the_server_decides_are_not_taken_from_the_file(team, other_team):
    victim = app_services.app_create(actor=_owner(other_team), name="Theirs", mode="chat")
    document = yaml.safe_load(DIFY_1X_CHAT)
    document["app"].update(
        id=str(victim.pk),
        tenant_id=str(other_team.workspace.pk),
        workspace=str(other_team.workspace.pk),
        site_code=victim.site_code,
        enable_api=False,
    )
    document["id"] = str(victim.pk)
    document["model_config"]["workspace_id"] = str(other_team.workspace.pk)
    app, warnings = dsl.app_import(actor=_owner(team), yaml_text=yaml.safe_dump(document))
    assert app.pk != victim.pk and app.site_code != victim.site_code
    assert app.workspace == team.workspace and app.enable_api is True
    assert "workspace_id" not in app.config
    assert any("workspace_id" in w for w in warnings)
    victim.refresh_from_db()
    assert victim.name == "Theirs"


def test_knowledge_bases_of_elsewhere_are_dropped_and_ours_kept(team, other_team):
    ours = Dataset.objects.create(workspace=team.workspace, name="Ours")
    theirs = Dataset.objects.create(workspace=other_team.workspace, name="Theirs")
    entries = [
        {"dataset": {"enabled": True, "id": str(ours.pk)}},
        {"dataset": {"enabled": True, "id": str(theirs.pk)}},
        {"dataset": {"enabled": True, "id": "6d3cd1de-not-a-uuid"}},
    ]
    text = _file(model_config__dataset_configs={"datasets": {"datasets": entries}})
    app, warnings = dsl.app_import(actor=_owner(team), yaml_text=text)
    assert app.config["dataset_configs"]["datasets"]["datasets"] == entries[:1]
    assert any("2 knowledge base(s)" in w for w in warnings)


def test_the_name_given_with_the_import_wins(team):
    app, _ = dsl.app_import(actor=_owner(team), yaml_text=DIFY_1X_CHAT, name="Renamed")
    assert app.name == "Renamed"


def test_a_normal_member_cannot_import(team):
    with pytest.raises(PermissionDenied):
        dsl.app_import(actor=team.members[Role.NORMAL], yaml_text=DIFY_1X_CHAT)


def test_a_newer_minor_version_imports_with_a_warning(team):
    app, warnings = dsl.app_import(actor=_owner(team), yaml_text=_file(version="0.9.0"))
    assert app.pk and any("0.9.0" in w for w in warnings)


def test_an_image_icon_falls_back_to_the_default_with_a_warning(team):
    text = _file(app__icon="4f7c2e1a-file-id-of-an-upload", app__icon_type="image")
    app, warnings = dsl.app_import(actor=_owner(team), yaml_text=text)
    assert app.icon == App._meta.get_field("icon").default
    assert any("icon" in w for w in warnings)


BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "app: {mode: chat, name: x}",
        "model_config: {}",
    ]
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("app: [unclosed\n  mode: chat", "not valid YAML (line"),
        ("- app\n- model_config\n", "holds a list"),
        ("just words", "single str value"),
        ("", "empty"),
        (BILLION_LAUGHS, "too many values"),
        ("kind: app\napp: {name: x}\nmodel_config: {}\n", "does not say the app's mode"),
        ("kind: app\nmodel_config: {}\n", "no `app` section"),
        ("app: {name: x, mode: chat}\n", "no `model_config`"),
        ("app: {name: x, mode: workflow}\nworkflow: {}\n", "Workflow apps (workflow)"),
        ("app: {name: x, mode: advanced-chat}\n", "Chatflow apps (advanced-chat)"),
        ("app: {name: x, mode: agent-chat}\nmodel_config: {}\n", "Agent apps (agent-chat)"),
        ("app: {name: x, mode: banana}\nmodel_config: {}\n", "Unknown app mode 'banana'"),
        ("kind: dataset\napp: {name: x, mode: chat}\n", "kind 'dataset'"),
        ("version: 1.0.0\napp: {name: x, mode: chat}\nmodel_config: {}\n", "newer major"),
        ("version: latest\napp: {name: x, mode: chat}\nmodel_config: {}\n", "not a version"),
        ("app: {mode: chat}\nmodel_config: {}\n", "no name"),
        ("app: !!python/object:os.system {}\n", "not valid YAML"),
        ("app: {name: x, mode: chat}\nmodel_config: {top: .nan}\n", "not finite"),
        ("a: &a [*a]\n", "nests too deeply"),
        ("x: " + "y" * (10 * 1024 * 1024), "larger than 2 MB"),
    ],
    ids=[
        "not-yaml",
        "a-list",
        "a-scalar",
        "empty",
        "billion-laughs",
        "missing-mode",
        "missing-app",
        "missing-model-config",
        "workflow",
        "chatflow",
        "agent",
        "unknown-mode",
        "other-kind",
        "newer-major",
        "bad-version",
        "no-name",
        "python-tag",
        "nan",
        "recursive-alias",
        "10-mb",
    ],
)
def test_bad_files_are_refused_with_a_reason_and_create_nothing(team, text, message):
    with pytest.raises(DomainError, match=None) as caught:
        dsl.app_import(actor=_owner(team), yaml_text=text)
    assert message in caught.value.message
    assert caught.value.status == 400
    assert not App.objects.for_workspace(team.workspace).exists()
