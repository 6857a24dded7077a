"""Settings → Model providers: every catalog provider with its status, credential forms
generated from the YAML schemas, per-model settings and load balancing, and the
workspace's default models.

Only owners and admins see credential forms. Secrets never travel back to the browser: a
secret input renders empty with the mask as its placeholder, and an empty submission
keeps the stored value (credentials.clean_credentials does that)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django import forms
from django.contrib import messages
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import HttpResponseClientRefresh

from apps.core.crypto import mask_secret
from apps.core.errors import DomainError, NotFound
from apps.core.pages import run_action
from apps.providers import catalog, selectors, services
from apps.providers.credentials import CredentialsInvalid
from apps.providers.models import MODEL_TYPES, LoadBalancing
from apps.providers.schema import CredentialField, ProviderSpec
from apps.tenants.decorators import workspace_view
from apps.tenants.permissions import can

TYPE_LABELS = dict(MODEL_TYPES)
# The model types a workspace picks a default for, as the defaults card names them.
DEFAULT_TYPES = [
    ("llm", "Reasoning"),
    ("text-embedding", "Embedding"),
    ("rerank", "Rerank"),
    ("speech2text", "Speech to text"),
    ("tts", "Text to speech"),
]
STRATEGY_LABELS = dict(LoadBalancing.choices)
CREDENTIAL_PREFIX = "cred-"  # credential inputs, apart from the form's own fields
_TRUE = {"true", "1", "on", "yes"}


# --- Input forms (only the fields that are not in a provider's schema) ------------------


class ModelKeyForm(forms.Form):
    """Which model a POST is about; names go in the body as they may contain slashes."""

    model_type = forms.ChoiceField(choices=MODEL_TYPES)
    model = forms.CharField(max_length=255)


class ModelSettingsForm(ModelKeyForm):
    enabled = forms.NullBooleanField(required=False)
    load_balancing = forms.ChoiceField(choices=LoadBalancing.choices, required=False)


class CredentialSetForm(ModelKeyForm):
    name = forms.CharField(max_length=100)


def _form_error(form: forms.Form) -> str:
    field, errors = next(iter(form.errors.items()))
    label = "" if field == "__all__" else f"{field.replace('_', ' ').capitalize()}: "
    return label + errors[0]


# --- Credential forms generated from a schema -------------------------------------------


@dataclass
class FieldView:
    """One credential input as the template draws it; never holds a secret's value."""

    variable: str
    name: str
    id: str
    label: str
    type: str
    required: bool
    placeholder: str = ""
    help: str = ""
    value: str = ""
    checked: bool = False
    options: list[dict] = field(default_factory=list)
    show_on: str = ""  # JSON conditions for static/js/orrery.js
    max_length: int = 0
    error: str = ""
    kept: bool = False  # a stored secret that an empty input keeps


def _show_on(conditions) -> str:
    return json.dumps([{"variable": c.variable, "value": c.value} for c in conditions])


def _field_views(
    fields: list[CredentialField],
    *,
    id_prefix: str,
    values: dict | None = None,
    masks: dict | None = None,
    error: DomainError | None = None,
) -> list[FieldView]:
    """`values` are plain (non-secret) values to show; `masks` the stored secrets' masks."""
    values, masks = values or {}, masks or {}
    views = []
    for item in fields:
        raw = values.get(item.variable, item.default)
        value = "" if raw is None or isinstance(raw, bool) else str(raw)
        placeholder = item.placeholder.text if item.placeholder else ""
        if item.type == "secret-input":
            value = ""  # never sent back, not even masked in a value
            if masks.get(item.variable):
                placeholder = f"{masks[item.variable]} — leave empty to keep"
        elif "\n" in value or "\r" in value:  # a text input cannot hold a line break
            value, placeholder = "", placeholder or "Leave empty for the default"
        views.append(
            FieldView(
                variable=item.variable,
                name=CREDENTIAL_PREFIX + item.variable,
                id=f"{id_prefix}-{item.variable}",
                label=item.label.text,
                type=item.type,
                required=item.required,
                placeholder=placeholder,
                help=item.help.text if item.help else "",
                value=value,
                checked=str(raw).lower() in _TRUE,
                options=[
                    {
                        "value": option.value,
                        "label": option.label.text,
                        "show_on": _show_on(option.show_on) if option.show_on else "",
                    }
                    for option in item.options
                ],
                show_on=_show_on(item.show_on) if item.show_on else "",
                max_length=item.max_length,
                kept=item.type == "secret-input" and bool(masks.get(item.variable)),
                error=(
                    error.message
                    if isinstance(error, CredentialsInvalid) and error.field == item.variable
                    else ""
                ),
            )
        )
    return views


def _submitted_credentials(post, fields: list[CredentialField]) -> dict:
    """The credential values a form sent. An unticked switch is "false"; an empty text
    field that has a default is left out so the default applies (a text input cannot show
    every default, e.g. a blank line)."""
    values: dict = {}
    for item in fields:
        raw = post.get(CREDENTIAL_PREFIX + item.variable)
        if item.type == "switch":
            values[item.variable] = "true" if raw else "false"
        elif raw is not None and not (raw == "" and item.default is not None):
            values[item.variable] = raw
    return values


def _check_address(spec: ProviderSpec, fields: list[CredentialField], credentials: dict) -> None:
    """Refuse a base URL that is not an http(s) address before anything tries to call it
    (the HTTP client raises on some malformed ones rather than failing the check)."""
    variable = spec.runtime.base_url_field
    value = str(credentials.get(variable) or "").strip() if variable else ""
    if not value:
        return
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        label = next((f.label.text for f in fields if f.variable == variable), variable)
        raise CredentialsInvalid(
            f"{label} must be an address starting with http:// or https://.", field=variable
        )


def _typed_anything(post, fields: list[CredentialField]) -> bool:
    return any(
        post.get(CREDENTIAL_PREFIX + item.variable, "").strip()
        for item in fields
        if item.type in ("text-input", "secret-input")
    )


def _form_message(error: DomainError | None) -> str:
    """A form-level error: anything not already shown next to its field."""
    if error is None or (isinstance(error, CredentialsInvalid) and error.field):
        return ""
    return error.message


def _without_secrets(error: DomainError, fields: list[CredentialField], values: dict):
    """The error with any secret the user typed masked: some client errors quote the
    request (e.g. an illegal header value), and a secret never goes back to the browser."""
    message = error.message
    for item in fields:
        secret = values.get(item.variable)
        if item.type != "secret-input" or not isinstance(secret, str) or len(secret) < 4:
            continue
        for form in (secret, repr(secret)[1:-1], secret.strip()):
            message = message.replace(form, mask_secret(secret.strip()) or "••••")
    if message == error.message:
        return error
    field_name = error.field if isinstance(error, CredentialsInvalid) else None
    return CredentialsInvalid(message, field=field_name)


def _plain_values(fields: list[CredentialField], values: dict) -> dict:
    secrets = {item.variable for item in fields if item.type == "secret-input"}
    return {key: value for key, value in values.items() if key not in secrets}


@dataclass
class Failed:
    """A form that was refused, to draw again with what the user typed and why."""

    kind: str  # "provider", "custom", "edit" or "set"
    error: DomainError
    values: dict = field(default_factory=dict)  # never secrets
    model_type: str = ""
    model: str = ""
    name: str = ""


# --- Page data ------------------------------------------------------------------------


def _spec_or_404(provider: str) -> ProviderSpec:
    try:
        return catalog.provider(provider)
    except KeyError:
        raise Http404("No such model provider.") from None


def _manages(request: HttpRequest) -> bool:
    return can(request.membership.role, "providers.manage")


def _badge(status: selectors.ProviderStatus) -> tuple[str, str]:
    """(css modifier, label) of a provider's status."""
    if status.configured and not status.enabled:
        return "off", "Disabled"
    if status.configured:
        return "ok", "Configured"
    if status.system:
        return "system", "Operator keys"
    return "none", "Not set up"


def _customizable(spec: ProviderSpec) -> bool:
    return "customizable-model" in spec.configurate_methods and bool(spec.model_credential_schema)


def _format_tokens(size: int | None) -> str:
    return f"{size:,}" if size else "—"


@dataclass
class RowView:
    row: selectors.ModelRow
    index: int
    type_label: str
    context: str
    strategy: str
    set_fields: list[FieldView] | None = None
    edit_fields: list[FieldView] | None = None
    set_error: str = ""
    set_name: str = ""
    edit_error: str = ""
    open: str = ""  # which of the row's panels to show open: "sets" or "edit"
    error: str = ""  # a refused switch, shown in the row


def _row_views(
    request, spec: ProviderSpec, rows, *, failed: Failed | None = None, start: int = 0
) -> list[RowView]:
    manage = _manages(request)
    set_schema = spec.credential_fields(for_model=bool(spec.model_credential_schema))
    views = []
    for index, row in enumerate(rows, start):
        view = RowView(
            row=row,
            index=index,
            type_label=TYPE_LABELS.get(row.model_type, row.model_type),
            context=_format_tokens(row.context_size),
            strategy=STRATEGY_LABELS.get(row.load_balancing, row.load_balancing),
        )
        mine = failed and (failed.model_type, failed.model) == (row.model_type, row.model)
        if manage:
            set_failed = mine and failed.kind == "set"
            view.set_fields = _field_views(
                set_schema,
                id_prefix=f"set{index}",
                values=failed.values if set_failed else None,
                error=failed.error if set_failed else None,
            )
            for item in view.set_fields:  # empty means "the model's own credentials"
                item.required = False
            if set_failed:
                view.open, view.set_name = "sets", failed.name
                view.set_error = _form_message(failed.error)
            if row.custom and spec.model_credential_schema:
                fields = spec.credential_fields(for_model=True)
                shown = selectors.model_credentials_masked(request.workspace, spec, row)
                masks = {f.variable: shown.get(f.variable) for f in fields}
                edit_failed = mine and failed.kind == "edit"
                view.edit_fields = _field_views(
                    fields,
                    id_prefix=f"edit{index}",
                    values=failed.values if edit_failed else _plain_values(fields, shown),
                    masks=masks,
                    error=failed.error if edit_failed else None,
                )
                if edit_failed:
                    view.open, view.edit_error = "edit", _form_message(failed.error)
        views.append(view)
    return views


def _detail_context(request, spec: ProviderSpec, *, failed: Failed | None = None) -> dict:
    workspace = request.workspace
    status = selectors.provider_status(workspace=workspace, provider=spec.provider)
    css, label = _badge(status)
    rows = selectors.model_rows(workspace=workspace, provider=spec.provider)
    context = {
        "spec": spec,
        "status": status,
        "badge_css": css,
        "badge_label": label,
        "type_labels": [TYPE_LABELS.get(t, t) for t in spec.supported_model_types],
        "rows": _row_views(request, spec, rows, failed=failed),
        "manage": _manages(request),
        "strategies": LoadBalancing.choices,
    }
    if not context["manage"]:
        return context  # members see status and models, nothing from credentials
    masked = selectors.provider_credentials_masked(workspace=workspace, provider=spec.provider)
    context["has_credentials"] = masked is not None
    if spec.provider_credential_schema:
        fields = spec.credential_fields()
        refused = failed if failed and failed.kind == "provider" else None
        shown = masked or {}
        context["provider_fields"] = _field_views(
            fields,
            id_prefix="provider",
            values=refused.values if refused else _plain_values(fields, shown),
            masks={f.variable: shown.get(f.variable) for f in fields},
            error=refused.error if refused else None,
        )
        context["provider_error"] = _form_message(refused.error if refused else None)
    if _customizable(spec):
        refused = failed if failed and failed.kind == "custom" else None
        context["custom"] = {
            "label": spec.model_credential_schema.model.label.text,
            "placeholder": (
                spec.model_credential_schema.model.placeholder.text
                if spec.model_credential_schema.model.placeholder
                else ""
            ),
            "types": [(t, TYPE_LABELS.get(t, t)) for t in spec.supported_model_types],
            "model_type": refused.model_type if refused else spec.supported_model_types[0],
            "model": refused.model if refused else "",
            "fields": _field_views(
                spec.credential_fields(for_model=True),
                id_prefix="custom",
                values=refused.values if refused else None,
                error=refused.error if refused else None,
            ),
            "error": _form_message(refused.error if refused else None),
        }
    return context


def _detail_page(request, spec: ProviderSpec, *, failed=None, status: int = 200):
    context = _detail_context(request, spec, failed=failed)
    shown_in = {
        "provider": "provider_fields" in context,
        "custom": "custom" in context,
    }
    if failed and not shown_in.get(failed.kind, any(r.open for r in context["rows"])):
        messages.error(request, failed.error.message)  # no form on the page to show it in
    return render(request, "providers/provider_detail.html", context, status=status)


def _back_to(spec: ProviderSpec, anchor: str = "") -> HttpResponse:
    return redirect(reverse("provider_detail", args=[spec.provider]) + anchor)


def _find_row(request, spec: ProviderSpec, model_type: str, model: str):
    rows = selectors.model_rows(workspace=request.workspace, provider=spec.provider)
    for index, row in enumerate(rows):
        if (row.model_type, row.model) == (model_type, model):
            return index, row
    return None, None


# --- Pages ----------------------------------------------------------------------------


@workspace_view()
def providers_view(request):
    """The catalog as cards, set-up providers first, under the default-models card."""
    workspace = request.workspace
    manage = _manages(request)
    if request.method == "POST" and not manage:
        raise PermissionDenied("Only owners and admins choose the default models.")
    defaults = selectors.default_models(workspace=workspace)
    choices = {
        t: selectors.usable_models(workspace=workspace, model_type=t) for t, _ in DEFAULT_TYPES
    }
    errors: dict[str, str] = {}
    chosen = {t: f"{d.provider}/{d.model}" for t, d in defaults.items()}
    status = 200
    if request.method == "POST":
        for model_type, _ in DEFAULT_TYPES:
            value = request.POST.get(model_type, "")
            if not value or value == chosen.get(model_type):
                continue
            chosen[model_type] = value
            offered = {f"{row.provider}/{row.model}" for row in choices[model_type]}
            if value not in offered:
                errors[model_type] = "Choose one of the models in the list."
                continue
            provider, model = value.split("/", 1)  # provider ids have no slash; models may
            try:
                services.default_model_set(
                    actor=request.membership, model_type=model_type, provider=provider, model=model
                )
            except DomainError as exc:
                errors[model_type] = exc.message
        if not errors:
            messages.success(request, "Default models saved.")
            return redirect("providers")
        status = 400

    labels = {spec.provider: spec.label.text for spec in catalog.providers()}
    default_rows = []
    for model_type, label in DEFAULT_TYPES:
        groups: dict[str, list] = {}
        for row in choices[model_type]:
            groups.setdefault(labels[row.provider], []).append(
                {"value": f"{row.provider}/{row.model}", "label": row.label}
            )
        current = defaults.get(model_type)
        offered = {o["value"] for options in groups.values() for o in options}
        if current and f"{current.provider}/{current.model}" not in offered:
            groups.setdefault(labels.get(current.provider, current.provider), []).append(
                {
                    "value": f"{current.provider}/{current.model}",
                    "label": f"{current.model} (not available now)",
                }
            )
        default_rows.append(
            {
                "model_type": model_type,
                "label": label,
                "groups": sorted(groups.items()),
                "value": chosen.get(model_type, ""),
                "current": (
                    f"{labels.get(current.provider, current.provider)} · {current.model}"
                    if current
                    else ""
                ),
                "error": errors.get(model_type, ""),
            }
        )

    cards = []
    for provider_status in selectors.provider_statuses(workspace=workspace):
        spec = provider_status.spec
        css, badge = _badge(provider_status)
        cards.append(
            {
                "spec": spec,
                "badge_css": css,
                "badge": badge,
                "set_up": provider_status.configured or provider_status.system,
                "types": [TYPE_LABELS.get(t, t) for t in spec.supported_model_types],
            }
        )
    context = {
        "defaults": default_rows,
        "manage": manage,
        "set_up": [c for c in cards if c["set_up"]],
        "others": [c for c in cards if not c["set_up"]],
        "provider_count": len(cards),
    }
    return render(request, "providers/providers.html", context, status=status)


@require_safe
@workspace_view()
def provider_icon_view(request, provider: str):
    """A catalog provider's icon; the id is checked against the catalog, never a path."""
    _spec_or_404(provider)
    icon = catalog.icon_path(provider)
    content_type = "image/svg+xml" if icon.suffix == ".svg" else "image/png"
    response = HttpResponse(icon.read_bytes(), content_type=content_type)
    response["Cache-Control"] = "private, max-age=604800"
    # An SVG opened on its own is a document: let it draw, never run anything.
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


@workspace_view()
def provider_detail_view(request, provider: str):
    spec = _spec_or_404(provider)
    if request.method != "POST":
        return _detail_page(request, spec)
    if not _manages(request):
        raise PermissionDenied("Only owners and admins change model provider credentials.")
    if not spec.provider_credential_schema:
        messages.error(request, f"{spec.label.text} takes credentials per model: add a model.")
        return _detail_page(request, spec, status=400)
    fields = spec.credential_fields()
    credentials = _submitted_credentials(request.POST, fields)
    try:
        _check_address(spec, fields, credentials)
        services.provider_credentials_save(
            actor=request.membership, provider=spec.provider, credentials=credentials
        )
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except DomainError as exc:
        failed = Failed(
            "provider",
            _without_secrets(exc, fields, credentials),
            values=_plain_values(fields, credentials),
        )
        return _detail_page(request, spec, failed=failed, status=exc.status)
    messages.success(request, f"{spec.label.text} is set up: the credentials work.")
    return _back_to(spec)


@require_POST
@workspace_view("providers.manage")
def provider_enabled_view(request, provider: str):
    spec = _spec_or_404(provider)
    choice = request.POST.get("enabled")
    if choice not in ("true", "false"):
        messages.error(request, "Say whether to enable or disable the provider.")
        return _detail_page(request, spec, status=400)
    enabled = choice == "true"
    if run_action(
        request,
        services.provider_set_enabled,
        success=f"{spec.label.text} {'enabled' if enabled else 'disabled'}.",
        actor=request.membership,
        provider=spec.provider,
        enabled=enabled,
    ):
        return _back_to(spec)
    return _detail_page(request, spec, status=400)


@require_POST
@workspace_view("providers.manage")
def provider_remove_view(request, provider: str):
    spec = _spec_or_404(provider)
    if run_action(
        request,
        services.provider_credentials_delete,
        success=f"{spec.label.text}'s credentials were removed.",
        actor=request.membership,
        provider=spec.provider,
    ):
        return _back_to(spec)
    return _detail_page(request, spec, status=400)


@require_POST
@workspace_view("providers.manage")
def model_save_view(request, provider: str):
    """Add a custom model, or change one's credentials ("edit"); both validated for real."""
    spec = _spec_or_404(provider)
    kind = "edit" if request.POST.get("edit") else "custom"
    form = ModelKeyForm(request.POST)
    fields = spec.credential_fields(for_model=True)
    credentials = _submitted_credentials(request.POST, fields)
    if not form.is_valid():
        failed = Failed(
            kind,
            DomainError(_form_error(form)),
            values=_plain_values(fields, credentials),
            model_type=str(request.POST.get("model_type", ""))[:32],
            model=str(request.POST.get("model", ""))[:255],
        )
        return _detail_page(request, spec, failed=failed, status=400)
    model_type, model = form.cleaned_data["model_type"], form.cleaned_data["model"]
    try:
        _check_address(spec, fields, credentials)
        services.custom_model_save(
            actor=request.membership,
            provider=spec.provider,
            model_type=model_type,
            model=model,
            credentials=credentials,
        )
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except DomainError as exc:
        failed = Failed(
            kind,
            _without_secrets(exc, fields, credentials),
            values=_plain_values(fields, credentials),
            model_type=model_type,
            model=model,
        )
        return _detail_page(request, spec, failed=failed, status=exc.status)
    done = "saved" if kind == "edit" else "added: it answered"
    messages.success(request, f"Model {model} {done}.")
    return _back_to(spec, "#models")


@require_POST
@workspace_view("providers.manage")
def model_update_view(request, provider: str):
    """Switch a model on or off, or choose its load-balancing strategy. An HTMX request
    gets the model's table row back."""
    spec = _spec_or_404(provider)
    form = ModelSettingsForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_error(form))
        if request.htmx:  # no row to swap: reload the page, which shows the message
            return HttpResponseClientRefresh()
        return _detail_page(request, spec, status=400)
    model_type, model = form.cleaned_data["model_type"], form.cleaned_data["model"]
    index, row = _find_row(request, spec, model_type, model)
    if row is None:
        raise Http404("No such model.")
    enabled = form.cleaned_data["enabled"]
    strategy = form.cleaned_data["load_balancing"] or None
    if enabled is not None:
        success = f"{row.label} {'enabled' if enabled else 'disabled'}."
    else:
        success = f"Load balancing for {row.label} saved."
    ok = run_action(
        request,
        services.model_settings_update,
        success="" if request.htmx else success,
        actor=request.membership,
        provider=spec.provider,
        model_type=model_type,
        model=model,
        enabled=enabled,
        load_balancing=strategy,
    )
    if request.htmx:
        _, row = _find_row(request, spec, model_type, model)
        view = _row_views(request, spec, [row], start=index)[0]
        if not ok:  # show the refusal in the row, not on some later page
            view.error = " ".join(str(m) for m in get_messages(request))
        context = {"r": view, "spec": spec, "manage": True, "strategies": LoadBalancing.choices}
        return render(request, "providers/_model_row.html", context, status=200 if ok else 400)
    if ok:
        return _back_to(spec, f"#model-{index}")
    return _detail_page(request, spec, status=400)


@require_POST
@workspace_view("providers.manage")
def model_delete_view(request, provider: str):
    spec = _spec_or_404(provider)
    form = ModelKeyForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_error(form))
        return _detail_page(request, spec, status=400)
    model = form.cleaned_data["model"]
    run_action(
        request,
        services.model_delete,
        success=f"Model {model} deleted.",
        actor=request.membership,
        provider=spec.provider,
        model_type=form.cleaned_data["model_type"],
        model=model,
    )
    return _back_to(spec, "#models")


@require_POST
@workspace_view("providers.manage")
def credential_set_add_view(request, provider: str):
    """Another credential set for one model; no credentials typed: the model's own."""
    spec = _spec_or_404(provider)
    form = CredentialSetForm(request.POST)
    fields = spec.credential_fields(for_model=bool(spec.model_credential_schema))
    typed = _typed_anything(request.POST, fields)
    credentials = _submitted_credentials(request.POST, fields) if typed else {}
    model_type = str(request.POST.get("model_type", ""))[:32]
    model = str(request.POST.get("model", ""))[:255]

    def refuse(error: DomainError, status: int = 400) -> HttpResponse:
        failed = Failed(
            "set",
            error,
            values=_plain_values(fields, credentials),
            model_type=model_type,
            model=model,
            name=str(request.POST.get("name", ""))[:100],
        )
        return _detail_page(request, spec, failed=failed, status=status)

    if not form.is_valid():
        return refuse(DomainError(_form_error(form)))
    if _find_row(request, spec, model_type, model)[1] is None:
        return refuse(DomainError("Choose a model from the table."))
    try:
        _check_address(spec, fields, credentials)
        created = services.credential_set_add(
            actor=request.membership,
            provider=spec.provider,
            model_type=model_type,
            model=model,
            name=form.cleaned_data["name"],
            credentials=credentials,
        )
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except DomainError as exc:
        return refuse(_without_secrets(exc, fields, credentials), exc.status)
    messages.success(request, f"Credential set {created.name} added to {model}.")
    return _back_to(spec, "#models")


@require_POST
@workspace_view("providers.manage")
def credential_set_delete_view(request, provider: str, credential_set_id):
    spec = _spec_or_404(provider)
    run_action(
        request,
        services.credential_set_delete,
        success="Credential set deleted.",
        actor=request.membership,
        credential_set_id=credential_set_id,
    )
    return _back_to(spec, "#models")


@workspace_view()
def remote_models_view(request, provider: str):
    """The models the provider's own server lists, loaded after the page (a remote call)."""
    spec = _spec_or_404(provider)
    models, error = [], ""
    try:
        models = selectors.remote_models(workspace=request.workspace, provider=spec.provider)
    except DomainError as exc:
        error = str(exc)
    context = {"spec": spec, "models": models, "error": error}
    return render(request, "providers/_remote_models.html", context)


urlpatterns = [
    path(
        "settings/providers/<str:provider>/remote-models/",
        remote_models_view,
        name="provider_remote_models",
    ),
    path("settings/providers/", providers_view, name="providers"),
    path("settings/providers/<str:provider>/", provider_detail_view, name="provider_detail"),
    path("settings/providers/<str:provider>/icon.svg", provider_icon_view, name="provider_icon"),
    path(
        "settings/providers/<str:provider>/enabled/",
        provider_enabled_view,
        name="provider_enabled",
    ),
    path("settings/providers/<str:provider>/remove/", provider_remove_view, name="provider_remove"),
    path("settings/providers/<str:provider>/models/save/", model_save_view, name="model_save"),
    path(
        "settings/providers/<str:provider>/models/update/", model_update_view, name="model_update"
    ),
    path(
        "settings/providers/<str:provider>/models/delete/", model_delete_view, name="model_delete"
    ),
    path(
        "settings/providers/<str:provider>/credential-sets/add/",
        credential_set_add_view,
        name="credential_set_add",
    ),
    path(
        "settings/providers/<str:provider>/credential-sets/<uuid:credential_set_id>/delete/",
        credential_set_delete_view,
        name="credential_set_delete",
    ),
]
