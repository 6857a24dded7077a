"""An app's input variables (`user_input_form`) and its prompt template: checking what a
caller sends, and filling `{{variable}}` and `{{#context#}}` slots."""

from __future__ import annotations

import re

from apps.core.errors import DomainError

FIELD_TYPES = ("text-input", "paragraph", "select", "number")
_VARIABLE = re.compile(r"\{\{([a-zA-Z_][a-zA-Z0-9_]{0,29})\}\}")
CONTEXT_SLOT = "{{#context#}}"
QUERY_SLOT = "{{#query#}}"
DEFAULT_MAX_LENGTH = 48  # Dify's default for text-input fields without a limit


class InvalidInput(DomainError):
    code = "invalid_param"
    status = 400


def form_fields(config: dict) -> list[tuple[str, dict]]:
    """(type, field) for each well-formed entry of user_input_form."""
    fields = []
    for item in config.get("user_input_form") or []:
        if not isinstance(item, dict) or len(item) != 1:
            continue
        ((kind, spec),) = item.items()
        if kind in FIELD_TYPES and isinstance(spec, dict) and spec.get("variable"):
            fields.append((kind, spec))
    return fields


def inputs_clean(*, config: dict, inputs) -> dict:
    """The caller's inputs checked against the form: required present, text within its
    max length, select one of its options, number a number. Unknown keys are dropped."""
    if inputs is None:
        inputs = {}
    if not isinstance(inputs, dict):
        raise InvalidInput("inputs must be an object.")
    clean = {}
    for kind, spec in form_fields(config):
        name = spec["variable"]
        label = spec.get("label") or name
        value = inputs.get(name)
        if value is None or value == "":
            if spec.get("required"):
                raise InvalidInput(f"{name} is required in input form ({label}).")
            clean[name] = spec.get("default") or ""
            continue
        if kind == "number":
            clean[name] = _number(name, value)
            continue
        if not isinstance(value, str):
            raise InvalidInput(f"{name} in input form must be a string.")
        if kind == "select":
            options = [str(option) for option in spec.get("options") or []]
            if value not in options:
                raise InvalidInput(
                    f"{name} in input form must be one of the following: {', '.join(options)}."
                )
        elif kind in ("text-input", "paragraph"):
            limit = spec.get("max_length") or (DEFAULT_MAX_LENGTH if kind == "text-input" else 0)
            if limit and len(value) > int(limit):
                raise InvalidInput(f"{name} in input form must be at most {limit} characters long.")
        clean[name] = value
    return clean


def _number(name: str, value) -> int | float:
    if isinstance(value, bool):
        raise InvalidInput(f"{name} in input form must be a number.")
    if isinstance(value, int | float):
        return value
    try:
        number = float(str(value).strip())
    except ValueError:
        raise InvalidInput(f"{name} in input form must be a number.") from None
    return int(number) if number.is_integer() else number


def render(template: str, *, inputs: dict, context: str = "", query: str = "") -> str:
    """Fill {{variable}} from inputs (unknown ones stay as written), {{#context#}} with
    retrieved knowledge and {{#query#}} with the query."""
    text = _VARIABLE.sub(
        lambda m: str(inputs[m.group(1)]) if m.group(1) in inputs else m.group(0), template or ""
    )
    return text.replace(CONTEXT_SLOT, context).replace(QUERY_SLOT, query)
