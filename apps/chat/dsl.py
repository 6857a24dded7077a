"""Dify's app DSL (YAML) for chat and completion apps: import a file exported from Dify
(or from Orrery) as a new app, and export an app in the same shape.

The file's shape (Dify's `export_dsl`):

    version: "0.7.0"            # the DSL version; Dify 1.x writes 0.1.5 … 0.7.0
    kind: app
    app: {name, mode, icon, icon_type, icon_background, description, use_icon_as_answer_icon}
    model_config: {...}         # Dify's app_model_config, which is our App.config
    dependencies:               # Dify's PluginDependency, one per model plugin
    - current_identifier: null
      type: marketplace
      value: {marketplace_plugin_unique_identifier: "langgenius/openai:0.3.5@<sha256>",
              version: null}

Dify 1.x names model providers by plugin id (`langgenius/openai/openai`), older exports by
short name (`openai`); both become our provider id here, and export writes the plugin id
back. A provider or model we cannot serve is imported with a warning and left for the
user to choose. Nothing the server decides (workspace, ids, keys, public link) is read
from the file, and no secret is written to it."""

from __future__ import annotations

import copy
import datetime
import json
import math
import re
import uuid
from dataclasses import dataclass

import yaml

from apps.chat.config import default_config
from apps.chat.fallbacks import MAX_FALLBACKS
from apps.chat.models import App, AppMode
from apps.chat.services.apps import BUILDABLE_MODES, app_create, require
from apps.core.errors import DomainError
from apps.tenants.models import Membership

# What export writes: what Dify 1.16 writes for every app (its CURRENT_APP_DSL_VERSION).
# Dify imports an older minor version with a warning and asks before importing a newer one.
DSL_VERSION = "0.7.0"
# Newer minor versions than this are imported with a warning (their extra fields may
# mean something we ignore); another major version is refused.
NEWEST_KNOWN_VERSION = (0, 7)
MAX_DSL_BYTES = 2 * 1024 * 1024  # a chat app's file is a few kilobytes
MAX_NODES = 50_000  # values in the parsed document, aliases counted at every use
MAX_DEPTH = 40

# Dify's app_model_config keys, plus Orrery's own (memory, stop); others are dropped.
CONFIG_KEYS = {
    *default_config(AppMode.CHAT),
    "prompt_type",
    "chat_prompt_config",
    "completion_prompt_config",
    "dataset_query_variable",
    "external_data_tools",
    "agent_mode",
}
_EXTRA_KEY_TYPES = {
    "prompt_type": str,
    "chat_prompt_config": dict,
    "completion_prompt_config": dict,
    "dataset_query_variable": str,
    "external_data_tools": list,
    "agent_mode": dict,
}

# Our provider id → Dify's plugin id, where it is not langgenius/<id>/<id>.
_PLUGIN_IDS = {"gemini": "langgenius/gemini/google"}
_ORRERY_ONLY_PROVIDERS = {"local"}  # no Dify plugin serves these
# Marketplace packages (`author/plugin:version@sha256`) of the plugins behind our providers,
# as Dify 1.x exports name them. Dify's plugin daemon refuses an identifier without version
# and checksum, and one unknown to the marketplace cannot be installed from the import
# dialog, so only released packages are listed; a plugin missing here is left out of
# `dependencies` (the importer picks the provider after import). Recent daemons count a
# plugin as present whatever version of it is installed.
MARKETPLACE_PACKAGES = {  # plugin → (version, sha256 of the package)
    "langgenius/openai": (
        "0.3.5",
        "dcc15b5847dbe38c64c2a9fdc1ea2d46466b7028eb4766b251bc363b0eec3af3",
    ),
    "langgenius/gemini": (
        "0.6.4",
        "17f286b2d6699a258a2eba8bc1bff71b8f795b6aa7bee1464cbfa450b451303a",
    ),
    "langgenius/deepseek": (
        "0.0.20",
        "850efe73fb62bbe7ab2229116086596596297a77174fb86f73e1363b99a24116",
    ),
    "langgenius/tongyi": (
        "0.1.48",
        "966d88dc40611f067311c1c9839139ebc4b55bff471bc5e736dc3e828bc67b46",
    ),
}

_VERSION = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?")
_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")


class DslError(DomainError):
    code = "invalid_dsl"
    status = 400


# --- Import -----------------------------------------------------------------------------


def app_import(
    *, actor: Membership, yaml_text: str, name: str | None = None
) -> tuple[App, list[str]]:
    """Create an app from a DSL file; returns it with warnings for what could not be
    carried over (an unknown model, a dropped setting …). Raises DslError with a reason
    for a file that cannot be imported at all."""
    require(actor, "apps.edit")
    document = parse_dsl(yaml_text)
    warnings: list[str] = []

    kind = document.get("kind", "app")
    if kind != "app":
        raise DslError(f"This file has kind {kind!r}: Orrery imports app exports (kind: app).")
    warnings += _check_version(document.get("version"))

    meta = document.get("app")
    if not isinstance(meta, dict):
        raise DslError("The file has no `app` section: is it a Dify app export?")
    mode = meta.get("mode")
    if not mode:
        raise DslError("The file does not say the app's mode (app.mode): chat or completion.")
    if mode not in BUILDABLE_MODES:
        known = {m.value: m.label for m in AppMode}
        if mode in known:
            raise DslError(
                f"{known[mode]} apps ({mode}) cannot be imported yet: only chat and "
                "completion apps can."
            )
        raise DslError(f"Unknown app mode {mode!r}: Orrery imports chat and completion apps.")

    model_config = document.get("model_config")
    if not isinstance(model_config, dict):
        raise DslError(
            "The file has no `model_config` section, which chat and completion apps carry."
        )

    title = _import_name(name if name is not None else meta.get("name"), warnings)
    config = _import_config(actor, mode, model_config, warnings)
    if meta.get("use_icon_as_answer_icon"):
        warnings.append("Using the app icon as the answer icon is not supported; it was left off.")

    app = app_create(
        actor=actor,
        name=title,
        mode=mode,
        description=_text(meta.get("description")),
        icon=_import_icon(meta, warnings),
        config=config,
    )
    background = meta.get("icon_background")
    if isinstance(background, str) and _COLOUR.match(background):
        app.icon_background = background
        app.save(update_fields=["icon_background"])
    return app, warnings


def parse_dsl(yaml_text: str | bytes) -> dict:
    """The file as plain JSON-able data, or DslError saying what is wrong with it."""
    if isinstance(yaml_text, bytes):
        if len(yaml_text) > MAX_DSL_BYTES:
            raise _too_big()
        try:
            yaml_text = yaml_text.decode("utf-8")
        except UnicodeDecodeError:
            raise DslError("The file is not UTF-8 text.") from None
    if not isinstance(yaml_text, str):
        raise DslError("Send the DSL file's YAML text.")
    if len(yaml_text.encode("utf-8", "surrogatepass")) > MAX_DSL_BYTES:
        raise _too_big()
    if not yaml_text.strip():
        raise DslError("The file is empty.")
    try:
        data = yaml.safe_load(yaml_text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        problem = getattr(exc, "problem", None) or "it cannot be read"
        raise DslError(f"This is not valid YAML{at}: {problem}.") from None
    except RecursionError:
        raise DslError("The file nests too deeply to be an app export.") from None
    if not isinstance(data, dict):
        what = "a list" if isinstance(data, list) else f"a single {type(data).__name__} value"
        raise DslError(
            f"The file holds {what}; a DSL file is a mapping with kind, version, app and "
            "model_config."
        )
    return _plain(data, _Budget(), 0)


class _Budget:
    """Counts values as they are copied, so an alias bomb stops long before it grows."""

    def __init__(self) -> None:
        self.left = MAX_NODES

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise DslError(
                "The file expands to too many values (YAML aliases repeated over and over?); "
                "an app export is far smaller."
            )


def _plain(value, budget: _Budget, depth: int):
    """A copy of `value` with only JSON types (dates become ISO text)."""
    budget.spend()
    if depth > MAX_DEPTH:
        raise DslError("The file nests too deeply to be an app export.")
    if isinstance(value, dict):
        return {_key(k): _plain(v, budget, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v, budget, depth + 1) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DslError("The file holds a number that is not finite (.nan or .inf).")
        return value
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    raise DslError(f"The file holds a value of an unsupported type ({type(value).__name__}).")


def _key(key) -> str:
    """Mapping keys as JSON has them: YAML's `1:` or `true:` become "1" and "true"."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key)
    raise DslError("The file has a mapping key that is not text.")


def _too_big() -> DslError:
    return DslError(
        f"The file is larger than {MAX_DSL_BYTES // (1024 * 1024)} MB; a chat or completion "
        "app's export is a few kilobytes."
    )


def _check_version(raw) -> list[str]:
    if raw is None or raw == "":
        return []  # Dify reads a missing version as 0.1.0
    match = _VERSION.match(str(raw))
    if not match:
        raise DslError(f"The DSL version {raw!r} is not a version number like 0.7.0.")
    major, minor = int(match.group(1)), int(match.group(2) or 0)
    if major > NEWEST_KNOWN_VERSION[0]:
        raise DslError(
            f"This file uses DSL version {raw}, a newer major version than Orrery reads "
            f"(0.x). Export it again from a Dify that writes 0.x, or import it by hand."
        )
    if minor > NEWEST_KNOWN_VERSION[1]:
        return [
            f"The file uses DSL version {raw}, newer than Orrery knows "
            f"({NEWEST_KNOWN_VERSION[0]}.{NEWEST_KNOWN_VERSION[1]}.x): check the settings "
            "after import."
        ]
    return []


def _text(value, limit: int = 2000) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _import_name(value, warnings: list[str]) -> str:
    title = value.strip() if isinstance(value, str) else ""
    if not title:
        raise DslError("The app has no name: give one with the import or in app.name.")
    if len(title) > 100:
        warnings.append("The app's name was cut to 100 characters.")
        title = title[:100].rstrip()
    return title


def _import_icon(meta: dict, warnings: list[str]) -> str:
    icon = meta.get("icon")
    if meta.get("icon_type", "emoji") not in ("emoji", None) or (
        isinstance(icon, str) and len(icon) > 16
    ):
        warnings.append("The app's image icon was not imported; it has the default icon.")
        return ""
    return icon if isinstance(icon, str) else ""


def _import_config(actor: Membership, mode: str, given: dict, warnings: list[str]) -> dict:
    config = default_config(mode)
    ignored = sorted(set(given) - CONFIG_KEYS)
    if ignored:
        warnings.append(f"Settings Orrery does not know were left out: {', '.join(ignored)}.")
    for key in sorted(set(given) & CONFIG_KEYS):
        value = given[key]
        expected = type(config[key]) if key in config else _EXTRA_KEY_TYPES[key]
        if not isinstance(value, expected):
            if value is not None:
                warnings.append(f"The setting {key!r} has the wrong shape; the default is used.")
            continue
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **copy.deepcopy(value)}
        else:
            config[key] = copy.deepcopy(value)

    _import_model(actor, config, warnings)
    _drop_tool_credentials(config)
    _import_datasets(actor, config, warnings)
    _map_auxiliary_providers(config, _our_provider)
    return config


def _import_model(actor: Membership, config: dict, warnings: list[str]) -> None:
    model = config["model"]
    if not isinstance(model.get("completion_params"), dict):
        model["completion_params"] = {}
    if model.get("mode") not in ("chat", "completion"):
        model["mode"] = "chat"
    _import_main_model(actor, model, warnings)
    if "fallbacks" in model:  # Orrery's key: a file from Dify has none
        model["fallbacks"] = _import_fallbacks(actor, model, warnings)


def _import_main_model(actor: Membership, model: dict, warnings: list[str]) -> None:
    given_provider = model.get("provider") if isinstance(model.get("provider"), str) else ""
    given_name = model.get("name") if isinstance(model.get("name"), str) else ""
    model["provider"], model["name"] = given_provider, given_name
    if not given_provider:
        if given_name:
            warnings.append(f"The model {given_name!r} names no provider: choose a model.")
        model["name"] = ""
        return
    provider = _our_provider_or_none(given_provider)
    if provider is None:
        warnings.append(
            f"The model provider {given_provider!r} is not one Orrery knows, so the app has "
            f"no model yet (it used {given_name or 'no model'}): choose one in its settings."
        )
        model["provider"], model["name"] = "", ""
        return
    model["provider"] = provider
    standing = _llm_standing(actor, provider, given_name)
    if not given_name:
        warnings.append(f"The file names no {standing.label} model: choose one.")
    elif not standing.known and not standing.addable:
        warnings.append(
            f"{standing.label} has no model {given_name!r} in Orrery, so the app has no "
            "model yet: choose one in its settings."
        )
        model["name"] = ""
    _warn_what_to_set_up(standing, warnings)


@dataclass(frozen=True)
class _Standing:
    """What this workspace makes of an LLM named in a file (by our provider id)."""

    label: str  # the provider's name, for people
    model: str
    known: bool  # a predefined model, or a custom model of this workspace
    addable: bool  # the provider takes models by any name
    set_up: bool  # the provider has credentials here

    @property
    def add_it(self) -> str:
        return (
            f"The model {self.model!r} is not one of {self.label}'s predefined models: add it "
            f"under Model providers → {self.label} before using the app."
        )

    @property
    def set_it_up(self) -> str:
        return (
            f"{self.label} is not set up in this workspace: add its credentials under "
            "Model providers before using the app."
        )


def _llm_standing(actor: Membership, provider: str, name: str) -> _Standing:
    # Imported here: the provider catalog and its workspace state are read only for
    # import and export, not whenever app configuration is touched.
    from apps.providers import catalog, selectors

    spec = catalog.provider(provider)
    status = selectors.provider_status(workspace=actor.workspace, provider=provider)
    custom = {c.model for c in status.custom_models if c.model_type == "llm"}
    return _Standing(
        label=spec.label.text,
        model=name,
        known=spec.model("llm", name) is not None or name in custom,
        addable=bool({"customizable-model", "fetch-from-remote"} & set(spec.configurate_methods)),
        set_up=bool(status.usable or status.custom_models),
    )


def _warn_what_to_set_up(standing: _Standing, warnings: list[str]) -> None:
    if standing.model and not standing.known and standing.addable:
        _warn_once(warnings, standing.add_it)
    if not standing.set_up:
        _warn_once(warnings, standing.set_it_up)


def _warn_once(warnings: list[str], warning: str) -> None:
    if warning not in warnings:  # a fallback often shares the main model's provider
        warnings.append(warning)


def _import_fallbacks(actor: Membership, model: dict, warnings: list[str]) -> list[dict]:
    """The file's fallback chain, in our provider ids. Repeats, the main model itself and
    any beyond MAX_FALLBACKS are left out with a warning."""
    entries = model["fallbacks"]
    if not isinstance(entries, list):
        warnings.append("The fallback models have the wrong shape; the app has none.")
        return []
    main = {"provider": model["provider"], "name": model["name"]}
    kept: list[dict] = []
    for entry in entries:
        fallback = _import_fallback(actor, entry, warnings)
        if fallback is None:
            continue
        named = f"The fallback model {fallback['provider']}/{fallback['name']}"
        if fallback == main or fallback in kept:
            warnings.append(f"{named} is the app's model or listed already: it was left out.")
        elif len(kept) == MAX_FALLBACKS:
            warnings.append(f"{named} was left out: an app has at most {MAX_FALLBACKS}.")
        else:
            kept.append(fallback)
    return kept


def _import_fallback(actor: Membership, entry, warnings: list[str]) -> dict | None:
    """One fallback as ours, on the main model's terms: one Orrery cannot serve is left
    out, one the workspace must still set up is kept with a warning."""
    if not isinstance(entry, dict) or not all(
        isinstance(entry.get(key), str) and entry[key] for key in ("provider", "name")
    ):
        warnings.append("A fallback model without a provider and a model name was left out.")
        return None
    given = f"{entry['provider']}/{entry['name']}"
    provider = _our_provider_or_none(entry["provider"])
    if provider is None:
        warnings.append(
            f"The fallback model {given} was left out: Orrery does not know its provider."
        )
        return None
    standing = _llm_standing(actor, provider, entry["name"])
    if not standing.known and not standing.addable:
        warnings.append(
            f"The fallback model {given} was left out: {standing.label} has no such "
            "model in Orrery."
        )
        return None
    _warn_what_to_set_up(standing, warnings)
    return {"provider": provider, "name": entry["name"]}


def _import_datasets(actor: Membership, config: dict, warnings: list[str]) -> None:
    """Keep references to knowledge bases of this workspace only: ids from another
    installation (or another workspace) mean nothing here."""
    holder = _section(config, "dataset_configs").get("datasets")
    entries = holder.get("datasets") if isinstance(holder, dict) else None
    if not isinstance(entries, list) or not entries:
        return
    # Imported here: knowledge bases sit above chat's own models only for this check.
    from apps.datasets.models import Dataset

    wanted = {
        str(entry["dataset"].get("id", ""))
        for entry in entries
        if isinstance(entry, dict) and isinstance(entry.get("dataset"), dict)
    }
    found = {
        str(pk)
        for pk in Dataset.objects.for_workspace(actor.workspace)
        .filter(pk__in=[i for i in wanted if _is_uuid(i)])
        .values_list("pk", flat=True)
    }
    kept = [
        entry
        for entry in entries
        if isinstance(entry, dict)
        and isinstance(entry.get("dataset"), dict)
        and str(entry["dataset"].get("id", "")) in found
    ]
    if len(kept) < len(entries):
        warnings.append(
            f"{len(entries) - len(kept)} knowledge base(s) the app used are not in this "
            "workspace and were removed: attach this workspace's knowledge instead."
        )
    holder["datasets"] = kept


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _our_provider_or_none(name: str) -> str | None:
    from apps.providers import catalog  # see _llm_standing

    return catalog.resolve_provider_id(name)


def _our_provider(name: str) -> str:
    return _our_provider_or_none(name) or name


def _map_auxiliary_providers(config: dict, convert) -> None:
    """Provider names outside `model`: annotation reply's embedding model and retrieval's
    rerank and embedding models."""
    annotation = _section(config, "annotation_reply")
    retrieval = _section(config, "dataset_configs")
    places = [
        (_section(annotation, "embedding_model"), "embedding_provider_name"),
        (_section(retrieval, "reranking_model"), "reranking_provider_name"),
        (_section(_section(retrieval, "weights"), "vector_setting"), "embedding_provider_name"),
    ]
    for holder, key in places:
        if isinstance(holder, dict) and isinstance(holder.get(key), str) and holder[key]:
            holder[key] = convert(holder[key])


def _drop_tool_credentials(config: dict) -> None:
    """Tool credential ids point at secrets of one workspace; they never travel."""
    tools = _section(config, "agent_mode").get("tools")
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, dict):
            tool.pop("credential_id", None)


def _section(holder: dict, key: str) -> dict:
    value = holder.get(key)
    return value if isinstance(value, dict) else {}


# --- Export -----------------------------------------------------------------------------


def plugin_id(provider: str) -> str:
    """Dify 1.x's name for our provider: `langgenius/<plugin>/<provider>`."""
    if not provider or provider in _ORRERY_ONLY_PROVIDERS or "/" in provider:
        return provider
    return _PLUGIN_IDS.get(provider, f"langgenius/{provider}/{provider}")


def app_export(*, app: App) -> str:
    """The app as a DSL file Dify (1.x) and Orrery import. Carries no secret: an app's
    configuration holds none, tool credential ids are dropped, and keys, the public link
    and ids stay behind."""
    if app.mode not in BUILDABLE_MODES:
        raise DslError(f"Apps of type {app.mode!r} cannot be exported yet.")
    config = copy.deepcopy(app.config or {})
    model = config.get("model") if isinstance(config.get("model"), dict) else {}
    providers = [model.get("provider", "")]
    _drop_tool_credentials(config)
    if model.get("provider"):
        model["provider"] = plugin_id(model["provider"])
    for fallback in model.get("fallbacks") or []:
        if isinstance(fallback, dict) and isinstance(fallback.get("provider"), str):
            providers.append(fallback["provider"])
            fallback["provider"] = plugin_id(fallback["provider"])

    def to_plugin(name: str) -> str:
        providers.append(name)
        return plugin_id(name)

    _map_auxiliary_providers(config, to_plugin)
    document = {
        "version": DSL_VERSION,
        "kind": "app",
        "app": {
            "name": app.name,
            "mode": app.mode,
            "icon": app.icon,
            "icon_type": "emoji",
            "icon_background": app.icon_background,
            "description": app.description,
            "use_icon_as_answer_icon": False,
        },
        "model_config": config,
        "dependencies": _dependencies(providers),
    }
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)


def _dependencies(providers: list[str]) -> list[dict]:
    """One marketplace dependency per Dify plugin the app's models come from, in Dify's
    shape, for the plugins whose released package we know (MARKETPLACE_PACKAGES)."""
    packages: list[str] = []
    for provider in providers:
        full = plugin_id(provider)
        if full.count("/") != 2:
            continue
        plugin = full.rsplit("/", 1)[0]
        if plugin not in MARKETPLACE_PACKAGES:
            continue
        version, checksum = MARKETPLACE_PACKAGES[plugin]
        package = f"{plugin}:{version}@{checksum}"
        if package not in packages:
            packages.append(package)
    return [
        {
            "current_identifier": None,
            "type": "marketplace",
            "value": {"marketplace_plugin_unique_identifier": package, "version": None},
        }
        for package in packages
    ]
