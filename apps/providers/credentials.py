"""Credential forms generated from a provider's YAML schema: cleaning what a user sent,
keeping stored secrets the user did not retype, and masking for display."""

from __future__ import annotations

from apps.core.crypto import mask_secret
from apps.core.errors import DomainError
from apps.providers.schema import MODEL_TYPE_VARIABLE, CredentialField

# What a form or API client may send back for a secret it did not change (Dify's
# sentinel); an empty value or the mask itself mean the same.
HIDDEN = "[__HIDDEN__]"
_TRUE = {"true", "1", "on", "yes"}


class CredentialsInvalid(DomainError):
    code = "invalid_credentials"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


def visible_fields(fields: list[CredentialField], values: dict) -> list[CredentialField]:
    """Fields whose show_on conditions hold for these values (the rest are not asked)."""
    return [f for f in fields if all(str(values.get(c.variable, "")) == c.value for c in f.show_on)]


def _is_url_field(field: CredentialField) -> bool:
    name = field.variable.lower()
    return field.type == "text-input" and any(w in name for w in ("url", "endpoint", "base"))


def clean_credentials(
    fields: list[CredentialField],
    submitted: dict,
    stored: dict | None = None,
    *,
    model_type: str | None = None,
) -> dict:
    """Validate `submitted` against the schema; unchanged secrets keep their stored value.

    A stored key is never sent to a new address without being typed again: when a URL
    field changes, every secret must be re-entered (the key-exfiltration trap of
    editable base URLs)."""
    stored = stored or {}
    values = {k: v for k, v in submitted.items() if v is not None}
    if model_type:  # model forms may show a field only for one model type
        values[MODEL_TYPE_VARIABLE] = model_type
    for field in fields:  # defaults first, so show_on sees them
        if field.variable not in values and field.default is not None:
            values[field.variable] = field.default
    url_changed = any(
        _is_url_field(f) and str(values.get(f.variable, "")) != str(stored.get(f.variable, ""))
        for f in fields
        if stored
    )
    cleaned: dict = {}
    for field in visible_fields(fields, values):
        if field.variable == MODEL_TYPE_VARIABLE:
            continue
        raw = values.get(field.variable, "")
        kept = field.variable in stored and raw in (HIDDEN, "", mask_secret(stored[field.variable]))
        if field.type == "secret-input" and kept:
            if url_changed:
                raise CredentialsInvalid(
                    f"{field.label.text} must be entered again when the address changes.",
                    field=field.variable,
                )
            cleaned[field.variable] = stored[field.variable]
            continue
        cleaned[field.variable] = _clean_value(field, raw)
    return cleaned


def _clean_value(field: CredentialField, raw) -> str | bool:
    label = field.label.text
    if field.type == "switch":
        return raw if isinstance(raw, bool) else str(raw).lower() in _TRUE
    value = str(raw) if raw is not None else ""
    if value.strip():  # whitespace-only values (a "\n\n" delimiter) are meant as they are
        value = value.strip()
    if field.required and not value:
        raise CredentialsInvalid(f"{label} is required.", field=field.variable)
    if value == HIDDEN:
        raise CredentialsInvalid(f"Enter {label}.", field=field.variable)
    if field.max_length and len(value) > field.max_length:
        raise CredentialsInvalid(
            f"{label} is longer than {field.max_length} characters.", field=field.variable
        )
    if field.type in ("select", "radio") and value:
        allowed = [option.value for option in field.options]
        if value not in allowed:
            raise CredentialsInvalid(
                f"{label} must be one of: {', '.join(allowed)}.", field=field.variable
            )
    return value


def secret_variables(fields: list[CredentialField]) -> set[str]:
    return {f.variable for f in fields if f.type == "secret-input"}


def for_display(fields: list[CredentialField], credentials: dict) -> dict:
    """What an admin may see: plain fields as they are, secrets masked (`sk-ab…yz`).
    Sending a mask back unchanged keeps the stored secret."""
    secrets = secret_variables(fields)
    return {
        key: (mask_secret(value) if key in secrets and value else value)
        for key, value in credentials.items()
    }
