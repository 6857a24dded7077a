"""The model-provider catalog: YAML folders under catalog/, read once and cached.

Layout of one provider (folder name = provider id):

    catalog/<provider>/provider.yaml          the provider (schema.ProviderSpec)
    catalog/<provider>/_assets/icon_s.svg     its icon, named by icon_small
    catalog/<provider>/models/<type>/*.yaml   one predefined model per file
    catalog/<provider>/models/<type>/_position.yaml   optional: model names in order

<type> is the model type with "_" for "-" (llm, text_embedding, rerank, speech2text, tts,
moderation), as in Dify's plugins. Other files whose names start with "_" are ignored. An
optional catalog/_position.yaml lists provider ids in display order; the rest follow by
label.

Loading collects every problem before failing, so one run of `validate_catalog()` shows
them all; each names the file (relative to the catalog), the dotted field and the reason."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from apps.providers.schema import (
    MODEL_TYPE_VARIABLE,
    MODEL_TYPES,
    CredentialField,
    ModelSpec,
    ProviderSpec,
)

CATALOG_ROOT = Path(__file__).resolve().parent / "catalog"

MODEL_TYPE_FOLDERS = {model_type: model_type.replace("-", "_") for model_type in MODEL_TYPES}
_MODEL_TYPE_OF_FOLDER = {folder: model_type for model_type, folder in MODEL_TYPE_FOLDERS.items()}

# Dify stores these older names in its model_type columns; exports and imports use them.
LEGACY_MODEL_TYPES = {
    "llm": "text-generation",
    "text-embedding": "embeddings",
    "rerank": "reranking",
}

# Names other products (Dify's short ids, its 1.x plugin ids, common spellings) give a
# provider we know under another id.
PROVIDER_ALIASES = {
    "google": "gemini",
    "google_ai": "gemini",
    "azure": "azure_openai",
    "dashscope": "tongyi",
    "qwen": "tongyi",
    "bailian": "tongyi",
    "zhipu": "zhipuai",
    "glm": "zhipuai",
    "bigmodel": "zhipuai",
    "volcengine": "volcengine_maas",
    "ark": "volcengine_maas",
    "doubao": "volcengine_maas",
    "nvidia_nim": "nvidia",
    "nim": "nvidia",
    "xai": "x",
    "x_ai": "x",
    "grok": "x",
    "together": "togetherai",
    "together_ai": "togetherai",
    "fireworks_ai": "fireworks",
    "fireworksai": "fireworks",
    "mistral": "mistralai",
    "kimi": "moonshot",
    "moonshotai": "moonshot",
    "lmstudio": "lm_studio",
    "tei": "huggingface_tei",
    "text_embeddings_inference": "huggingface_tei",
    "xorbits_inference": "xinference",
    "openai_compatible": "openai_api_compatible",
    "voyageai": "voyage",
    "voyage_ai": "voyage",
    "jina_ai": "jina",
    "jinaai": "jina",
    "siliconcloud": "siliconflow",
    "sentence_transformers": "local",
}


class CatalogError(Exception):
    """The catalog on disk is broken; `problems` holds one line per problem found."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            lines = "\n".join(f"- {problem}" for problem in self.problems)
            message = f"{len(self.problems)} problems in the provider catalog:\n{lines}"
        super().__init__(message)


class UnknownProviderError(KeyError):
    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


# --- Public API -------------------------------------------------------------------------


def providers() -> list[ProviderSpec]:
    """Every provider in the shipped catalog, in display order."""
    return list(_shipped()[0])


def provider(provider_id: str) -> ProviderSpec:
    """One provider by our id; see resolve_provider_id() for Dify's names."""
    try:
        return _shipped()[1][provider_id]
    except KeyError:
        known = ", ".join(sorted(_shipped()[1]))
        raise UnknownProviderError(
            f"No model provider {provider_id!r} in the catalog (known: {known})"
        ) from None


def resolve_provider_id(name: str) -> str | None:
    """Our provider id for `name`: our own id, a Dify short name ("google", "tongyi") or a
    Dify 1.x plugin id ("langgenius/openai/openai", "langgenius/gemini/google"); None
    when nothing matches."""
    known = _shipped()[1]
    segments = [
        part.split(":")[0].split("@")[0].strip().lower().replace("-", "_")
        for part in name.split("/")
    ]
    # The provider is the last segment of a plugin id; the plugin's name (the one before
    # it) is a second guess.
    candidates = [segments[-1]] + ([segments[-2]] if len(segments) > 1 else [])
    for candidate in candidates:
        for option in (candidate, PROVIDER_ALIASES.get(candidate)):
            if option in known:
                return option
    return None


def resolve_model_type(name: str) -> str | None:
    """Our model type for our name or Dify's stored one ("text-generation", "embeddings",
    "reranking"); None when unknown."""
    if name in MODEL_TYPES:
        return name
    return next((ours for ours, legacy in LEGACY_MODEL_TYPES.items() if legacy == name), None)


def legacy_model_type(model_type: str) -> str:
    """The name Dify stores for a model type (see resolve_model_type)."""
    return LEGACY_MODEL_TYPES.get(model_type, model_type)


def icon_path(provider_id: str, *, large: bool = False) -> Path:
    """The icon file of a shipped provider (the small one when there is no large one)."""
    spec = provider(provider_id)
    name = (spec.icon_large if large else None) or spec.icon_small
    return CATALOG_ROOT / provider_id / "_assets" / name


def load_catalog(root: Path = CATALOG_ROOT) -> list[ProviderSpec]:
    """Read and check every provider under `root`; raise CatalogError listing all problems."""
    specs, problems = _load(Path(root))
    if problems:
        raise CatalogError(problems)
    return specs


def validate_catalog(root: Path | None = None) -> list[str]:
    """Every problem in the catalog under `root` (the shipped one by default); empty if
    it is sound. Reads the files afresh, never the cache."""
    return _load(Path(root) if root else CATALOG_ROOT)[1]


@functools.cache
def _shipped() -> tuple[tuple[ProviderSpec, ...], dict[str, ProviderSpec]]:
    specs = load_catalog(CATALOG_ROOT)
    return tuple(specs), {spec.provider: spec for spec in specs}


# --- Loading ----------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_MISSING = object()


@dataclass
class _Models:
    models: list[ModelSpec] = dataclass_field(default_factory=list)
    sources: dict[tuple[str, str], str] = dataclass_field(default_factory=dict)  # → file
    broken_types: set[str] = dataclass_field(default_factory=set)


def _read_yaml(path: Path, root: Path, problems: list[str]) -> Any:
    """The parsed file, or _MISSING after recording why it could not be read."""
    name = _relative(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{name}: cannot be read: {exc}")
        return _MISSING
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        problems.append(f"{name}: {where}invalid YAML: {reason}")
        return _MISSING


def _read_mapping(path: Path, root: Path, problems: list[str]) -> dict | None:
    data = _read_yaml(path, root, problems)
    if data is _MISSING:
        return None
    if not isinstance(data, dict):
        problems.append(f"{_relative(path, root)}: expected a mapping of fields at the top")
        return None
    return data


def _read_position(path: Path, root: Path, problems: list[str]) -> list[str]:
    if not path.is_file():
        return []
    data = _read_yaml(path, root, problems)
    if data is _MISSING:
        return []
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        problems.append(f"{_relative(path, root)}: expected a list of names")
        return []
    return data


def _load(root: Path) -> tuple[list[ProviderSpec], list[str]]:
    problems: list[str] = []
    if not root.is_dir():
        return [], [f"{root}: the catalog folder does not exist"]
    specs = [
        spec
        for folder in sorted(root.iterdir())
        if folder.is_dir() and not folder.name.startswith(("_", "."))
        if (spec := _load_provider(folder, root, problems)) is not None
    ]
    order = _read_position(root / "_position.yaml", root, problems)
    ids = {spec.provider for spec in specs}
    for index, name in enumerate(order):
        if name not in ids:
            problems.append(f"_position.yaml: [{index}]: no provider {name!r} in the catalog")
    rank = {name: index for index, name in enumerate(order)}
    specs.sort(key=lambda spec: (rank.get(spec.provider, len(rank)), spec.label.text.casefold()))
    return specs, problems


def _load_provider(folder: Path, root: Path, problems: list[str]) -> ProviderSpec | None:
    provider_file = folder / "provider.yaml"
    if not provider_file.is_file():
        problems.append(f"{folder.name}/provider.yaml: missing")
        return None
    raw = _read_mapping(provider_file, root, problems)
    loaded = _load_models(folder, root, problems)
    if raw is None:
        return None
    name = _relative(provider_file, root)
    if "models" in raw:
        problems.append(
            f"{name}: models: unknown field (models are read from models/<type>/*.yaml)"
        )
        return None
    try:
        spec = ProviderSpec.model_validate({**raw, "models": loaded.models})
    except ValidationError as exc:
        problems.extend(_describe(exc, name))
        return None
    before = len(problems)
    _check_provider(spec, folder, root, loaded, problems)
    return spec if len(problems) == before else None


def _load_models(folder: Path, root: Path, problems: list[str]) -> _Models:
    """The provider's predefined models, the file each came from, and the model types
    with a file that failed (so checks across files do not pile on)."""
    result = _Models()
    models_dir = folder / "models"
    if not models_dir.is_dir():
        return result
    for type_dir in sorted(models_dir.iterdir()):
        if type_dir.name.startswith(("_", ".")):
            continue
        model_type = _MODEL_TYPE_OF_FOLDER.get(type_dir.name)
        if not type_dir.is_dir() or model_type is None:
            expected = ", ".join(MODEL_TYPE_FOLDERS.values())
            problems.append(
                f"{_relative(type_dir, root)}: not a model type folder (expected one of {expected})"
            )
            continue
        before = len(problems)
        found = _load_model_folder(type_dir, model_type, root, result.sources, problems)
        if len(problems) > before:
            result.broken_types.add(model_type)
        result.models.extend(found)
    return result


def _load_model_folder(
    type_dir: Path,
    model_type: str,
    root: Path,
    sources: dict[tuple[str, str], str],
    problems: list[str],
) -> list[ModelSpec]:
    found: list[ModelSpec] = []
    before = len(problems)
    for path in sorted(type_dir.iterdir()):
        name = _relative(path, root)
        if path.name.startswith("_") or path.is_dir():
            continue
        if path.suffix != ".yaml":
            problems.append(f"{name}: model files must end in .yaml")
            continue
        data = _read_mapping(path, root, problems)
        if data is None:
            continue
        data.setdefault("fetch_from", "predefined-model")
        try:
            spec = ModelSpec.model_validate(data)
        except ValidationError as exc:
            problems.extend(_describe(exc, name))
            continue
        if spec.model_type != model_type:
            problems.append(
                f"{name}: model_type: {spec.model_type!r} does not belong in "
                f"models/{type_dir.name}/ (expected {model_type!r})"
            )
            continue
        key = (spec.model_type, spec.model)
        if key in sources:
            problems.append(f"{name}: model: {spec.model!r} is already defined in {sources[key]}")
            continue
        sources[key] = name
        found.append(spec)

    position_file = type_dir / "_position.yaml"
    order = _read_position(position_file, root, problems)
    if len(problems) == before:  # a name in a file that failed is not a second problem
        names = {spec.model for spec in found}
        for index, model_name in enumerate(order):
            if model_name not in names:
                problems.append(
                    f"{_relative(position_file, root)}: [{index}]: no model {model_name!r} "
                    "in this folder"
                )
    rank = {model_name: index for index, model_name in enumerate(order)}
    return sorted(found, key=lambda spec: (rank.get(spec.model, len(rank)), spec.model))


# --- Checks across fields and files -----------------------------------------------------


def _check_provider(
    spec: ProviderSpec,
    folder: Path,
    root: Path,
    loaded: _Models,
    problems: list[str],
) -> None:
    name = _relative(folder / "provider.yaml", root)
    methods = set(spec.configurate_methods)
    supported = set(spec.supported_model_types)

    if spec.provider != folder.name:
        problems.append(
            f"{name}: provider: {spec.provider!r} differs from its folder {folder.name!r}"
        )
    for field in ("icon_small", "icon_large"):
        icon = getattr(spec, field)
        if icon and not (folder / "_assets" / icon).is_file():
            problems.append(
                f"{name}: {field}: icon file {folder.name}/_assets/{icon} does not exist"
            )
    for key in ("supported_model_types", "configurate_methods"):
        values = getattr(spec, key)
        if len(set(values)) != len(values):
            problems.append(f"{name}: {key}: a value is listed more than once")

    # Models against the provider's claims.
    types_with_models = {model.model_type for model in spec.models}
    for model in spec.models:
        source = loaded.sources[(model.model_type, model.model)]
        if model.model_type not in supported:
            problems.append(
                f"{source}: model_type: {model.model_type!r} is not in the provider's "
                "supported_model_types"
            )
        has_schema_rule = model.parameter_rule("json_schema") is not None
        if has_schema_rule and "structured-output" not in model.features:
            problems.append(
                f"{source}: features: a json_schema rule needs the structured-output feature"
            )
    if spec.models and "predefined-model" not in methods:
        problems.append(
            f"{name}: configurate_methods: ships model files but lacks predefined-model"
        )
    if "predefined-model" in methods:
        for model_type in spec.supported_model_types:
            if model_type not in types_with_models | loaded.broken_types:
                problems.append(
                    f"{name}: supported_model_types: predefined-model but no "
                    f"models/{MODEL_TYPE_FOLDERS[model_type]}/*.yaml for {model_type!r}"
                )

    # Which forms each way of configuring needs.
    if methods & {"predefined-model", "fetch-from-remote"} and not spec.provider_credential_schema:
        problems.append(
            f"{name}: provider_credential_schema: required by predefined-model and "
            "fetch-from-remote"
        )
    if "customizable-model" in methods and not spec.model_credential_schema:
        problems.append(f"{name}: model_credential_schema: required by customizable-model")
    if spec.model_credential_schema and "customizable-model" not in methods:
        problems.append(f"{name}: model_credential_schema: only used with customizable-model")
    if "fetch-from-remote" in methods and not spec.runtime.models_endpoint:
        problems.append(
            f"{name}: runtime.models_endpoint: fetch-from-remote needs a model-list endpoint"
        )

    for schema_key, fields in (
        ("provider_credential_schema", spec.credential_fields(for_model=False)),
        ("model_credential_schema", spec.credential_fields(for_model=True)),
    ):
        problems.extend(
            _check_form(fields, f"{name}: {schema_key}.credential_form_schemas", supported)
        )

    _check_runtime(spec, name, problems)


def _check_form(fields: list[CredentialField], where: str, model_types: set[str]) -> list[str]:
    problems: list[str] = []
    variables = {field.variable for field in fields}
    seen: set[tuple[str, tuple]] = set()
    for index, field in enumerate(fields):
        conditions = tuple(sorted((cond.variable, cond.value) for cond in field.show_on))
        if (field.variable, conditions) in seen:
            problems.append(
                f"{where}[{index}].variable: {field.variable!r} is defined twice with the "
                "same show_on"
            )
        seen.add((field.variable, conditions))
        places = [(f"[{index}].show_on", field.show_on)] + [
            (f"[{index}].options[{number}].show_on", option.show_on)
            for number, option in enumerate(field.options)
        ]
        for place, show_on in places:
            for position, condition in enumerate(show_on):
                at = f"{where}{place}[{position}]"
                if condition.variable == MODEL_TYPE_VARIABLE:
                    if condition.value not in model_types:
                        problems.append(
                            f"{at}.value: {condition.value!r} is not a supported model type"
                        )
                elif condition.variable not in variables:
                    problems.append(f"{at}.variable: no field {condition.variable!r} in this form")
                elif condition.variable == field.variable:
                    problems.append(f"{at}.variable: a field cannot depend on itself")
    return problems


def _check_runtime(spec: ProviderSpec, name: str, problems: list[str]) -> None:
    runtime = spec.runtime
    provider_fields = spec.credential_fields(for_model=False)
    model_fields = spec.credential_fields(for_model=True)
    all_fields = {field.variable: field for field in provider_fields + model_fields}

    def check(key: str, variable: str | None, fields: Iterable[str]) -> None:
        if variable and variable not in fields:
            problems.append(f"{name}: runtime.{key}: no credential field {variable!r}")

    check("api_key_field", runtime.api_key_field, all_fields)
    check("base_url_field", runtime.base_url_field, all_fields)
    check("model_name_field", runtime.model_name_field, {f.variable for f in model_fields})
    key_field = all_fields.get(runtime.api_key_field or "")
    if key_field and key_field.type != "secret-input":
        problems.append(
            f"{name}: runtime.api_key_field: {runtime.api_key_field!r} must be a secret-input"
        )
    if runtime.protocol != "local" and not (runtime.base_url or runtime.base_url_field):
        problems.append(f"{name}: runtime: needs base_url or base_url_field")
    if runtime.base_url_suffix and not runtime.base_url_field:
        problems.append(f"{name}: runtime.base_url_suffix: only applies with base_url_field")


# --- Messages ---------------------------------------------------------------------------

_REASONS = {
    "extra_forbidden": "unknown field",
    "missing": "required field missing",
}


def _describe(error: ValidationError, file: str) -> list[str]:
    lines = []
    for item in error.errors(include_url=False):
        path = _dotted(item["loc"])
        reason = _REASONS.get(item["type"], item["msg"]).removeprefix("Value error, ")
        lines.append(f"{file}: {path}: {reason}" if path else f"{file}: {reason}")
    return lines


def _dotted(loc: tuple[str | int, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
