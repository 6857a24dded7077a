"""The playground: try any usable LLM of the workspace with its parameters. The page is
rendered here; the answer streams over a websocket (apps/providers/consumers.py).

This module also owns the playground's form, for both sides: which control each of a
model's parameter rules becomes, and how the submitted values are read back and checked
against the same rules."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from apps.core.errors import DomainError
from apps.providers import catalog, selectors
from apps.providers.schema import ModelSpec, ParameterRule
from apps.tenants.decorators import workspace_view

PARAM_PREFIX = "param_"
MAX_MESSAGE_CHARS = 100_000
MAX_TEXT_PARAMETER_CHARS = 20_000


class PlaygroundInputError(DomainError):
    code = "invalid_playground_input"


# --- Models -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelChoice:
    provider: str
    model: str
    spec: ModelSpec | None  # None for custom models: they declare no parameter rules

    @property
    def value(self) -> str:
        return f"{self.provider}/{self.model}"

    @property
    def provider_label(self) -> str:
        return catalog.provider(self.provider).label.text

    @property
    def rules(self) -> list[ParameterRule]:
        return list(self.spec.parameter_rules) if self.spec else []


def model_choices(*, workspace) -> list[ModelChoice]:
    """Every LLM the workspace can call right now, with its catalog entry."""
    return [
        ModelChoice(row.provider, row.model, catalog.provider(row.provider).model("llm", row.model))
        for row in selectors.usable_models(workspace=workspace, model_type="llm")
    ]


def model_choice(choices: list[ModelChoice], value: Any) -> ModelChoice | None:
    return next((c for c in choices if c.value == value), None)


def _initial_choice(*, workspace, choices: list[ModelChoice], asked: Any) -> ModelChoice | None:
    chosen = model_choice(choices, asked)
    if chosen is None:
        default = selectors.default_models(workspace=workspace).get("llm")
        if default is not None:
            chosen = model_choice(choices, f"{default.provider}/{default.model}")
    return chosen or (choices[0] if choices else None)


# --- Parameter controls -------------------------------------------------------------------


def _number(value: float | int | None) -> str:
    """A number as an <input type=number> attribute: 2.0 → "2", 0.25 → "0.25"."""
    if value is None:
        return ""
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


@dataclass(frozen=True)
class Control:
    """One parameter rule as a form control."""

    rule: ParameterRule
    widget: str  # number, checkbox, select, textarea, text
    value: str = ""
    checked: bool = False
    min: str = ""
    max: str = ""
    step: str = ""
    options: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return PARAM_PREFIX + self.rule.name

    @property
    def html_id(self) -> str:
        return "playground-" + self.name.replace("_", "-")

    @property
    def label(self) -> str:
        return self.rule.label.text

    @property
    def help(self) -> str:
        return self.rule.help.text if self.rule.help else ""


def control_for(rule: ParameterRule) -> Control:
    default = rule.default
    if rule.type in ("float", "int"):
        if rule.type == "int":
            step = "1"
        elif rule.precision is not None:
            step = _number(10**-rule.precision)
        else:
            step = "any"
        return Control(
            rule,
            "number",
            value=_number(default),
            min=_number(rule.min),
            max=_number(rule.max),
            step=step,
        )
    if rule.type == "boolean":
        return Control(rule, "checkbox", checked=bool(default))
    if rule.type == "string" and rule.options:
        return Control(rule, "select", value=default or "", options=list(rule.options))
    widget = "textarea" if rule.type == "text" else "text"
    return Control(rule, widget, value=default or "")


def parameter_controls(choice: ModelChoice | None) -> list[Control]:
    return [control_for(rule) for rule in choice.rules] if choice else []


# --- Reading the submitted form back --------------------------------------------------------


def _read_number(rule: ParameterRule, raw: Any) -> float | int:
    label = rule.label.text
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise PlaygroundInputError(f"{label} must be a number.") from None
    if not math.isfinite(value):
        raise PlaygroundInputError(f"{label} must be a number.")
    if rule.type == "int":
        if not value.is_integer():
            raise PlaygroundInputError(f"{label} must be a whole number.")
        value = int(value)
    low, high = rule.min, rule.max
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            limits = f"between {_number(low)} and {_number(high)}"
        elif low is not None:
            limits = f"at least {_number(low)}"
        else:
            limits = f"at most {_number(high)}"
        raise PlaygroundInputError(f"{label} must be {limits}.")
    return value


def read_parameters(rules: list[ParameterRule], data: Mapping[str, Any]) -> dict[str, Any]:
    """The rules' values from the submitted form, checked against type, range and options.
    A blank field is left out, so the provider's own default applies."""
    parameters: dict[str, Any] = {}
    for rule in rules:
        raw = data.get(PARAM_PREFIX + rule.name)
        if isinstance(raw, list | dict):
            raise PlaygroundInputError(f"{rule.label.text} takes a single value.")
        if rule.type == "boolean":
            # An unticked checkbox is simply absent from the form.
            parameters[rule.name] = raw is True or str(raw).lower() in ("true", "on", "1")
            continue
        if isinstance(raw, bool):
            raise PlaygroundInputError(f"{rule.label.text} takes a single value.")
        text = "" if raw is None else str(raw).strip()
        if text == "":
            if rule.required:
                raise PlaygroundInputError(f"{rule.label.text} is required.")
            continue
        if rule.type in ("float", "int"):
            parameters[rule.name] = _read_number(rule, text)
        elif rule.options:
            if text not in rule.options:
                raise PlaygroundInputError(
                    f"{rule.label.text} must be one of: {', '.join(rule.options)}."
                )
            parameters[rule.name] = text
        else:
            if len(text) > MAX_TEXT_PARAMETER_CHARS:
                raise PlaygroundInputError(f"{rule.label.text} is too long.")
            parameters[rule.name] = text
    return parameters


def read_text(data: Mapping[str, Any], name: str, label: str, *, required: bool) -> str:
    raw = data.get(name)
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        raise PlaygroundInputError(f"{label} must be text.")
    if required and not raw.strip():
        raise PlaygroundInputError(f"Write a {label.lower()} to send.")
    if len(raw) > MAX_MESSAGE_CHARS:
        raise PlaygroundInputError(f"{label} is too long (at most {MAX_MESSAGE_CHARS} characters).")
    return raw


# --- Pages ----------------------------------------------------------------------------------


@require_GET
@workspace_view("apps.use")
def playground_view(request):
    """The page; asked by htmx (the model picker changed), only the parameter controls."""
    choices = model_choices(workspace=request.workspace)
    chosen = _initial_choice(
        workspace=request.workspace, choices=choices, asked=request.GET.get("model")
    )
    context = {"choices": choices, "chosen": chosen, "controls": parameter_controls(chosen)}
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "providers/playground_parameters.html", context)
    return render(request, "providers/playground.html", context)


urlpatterns = [path("playground/", playground_view, name="playground")]
