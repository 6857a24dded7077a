"""Envelope encryption of stored secrets (provider API keys, tool secrets).

Each workspace has a random data key that encrypts its secrets; the data key is stored
wrapped (encrypted) by the master keys from ORRERY_MASTER_KEYS. Replacing a master key
re-wraps the small data keys only; replacing a data key re-encrypts the columns declared
with register_encrypted_field. Ciphertexts start with "enc1:" so plaintext is never
mistaken for one.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import uuid
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models, transaction
from django.utils import timezone

from apps.core.errors import DomainError
from apps.core.models import DataKey

PREFIX = "enc1:"
WorkspaceRef = models.Model | uuid.UUID | str  # a Workspace or its id

_encrypted_fields: set[tuple[str, str]] = set()
# workspace id -> (wrapped key it came from, unwrapped data key)
_data_keys: dict[str, tuple[str, Fernet]] = {}


class SecretUnreadable(DomainError):
    code = "secret_unreadable"
    status = 400


def encrypt_secret(workspace: WorkspaceRef, plaintext: str) -> str:
    return _seal(_current_data_key(_workspace_id(workspace)), plaintext.encode())


def decrypt_secret(workspace: WorkspaceRef, token: str) -> str:
    workspace_id = _workspace_id(workspace)
    cached = _data_keys.get(workspace_id)
    if cached:
        try:
            return _open(cached[1], token).decode()
        except SecretUnreadable:
            pass  # another process may have replaced the data key: read it again
    data_key = _current_data_key(workspace_id, create=False)
    if data_key is None:
        raise SecretUnreadable("This workspace has no data key, so the secret cannot be read.")
    return _open(data_key, token).decode()


def encrypt_json(workspace: WorkspaceRef, data: dict) -> str:
    return encrypt_secret(workspace, json.dumps(data, separators=(",", ":")))


def decrypt_json(workspace: WorkspaceRef, token: str) -> dict:
    return json.loads(decrypt_secret(workspace, token))


def mask_secret(value: str) -> str:
    """What a form shows instead of a secret: `sk-ab…yz`, or dots for short values."""
    if not value:
        return ""
    if len(value) <= 8:
        return "••••"
    return f"{value[:5]}…{value[-2:]}"


def register_encrypted_field(model_label: str, field: str) -> None:
    """Declare a text column of a workspace-owned model that holds encrypt_secret tokens,
    so data-key rotation re-encrypts it. Call it from the owning app's AppConfig.ready."""
    _encrypted_fields.add((model_label, field))


def encrypted_fields() -> list[str]:
    """The registered columns, as "app_label.Model.field"."""
    return [f"{label}.{field}" for label, field in sorted(_encrypted_fields)]


def clear_key_cache() -> None:
    _data_keys.clear()


def data_keys_rewrap() -> tuple[int, list[str]]:
    """Re-wrap every data key under the newest master key.

    Returns how many were re-wrapped and the workspace ids whose key no master key opens.
    """
    rewrapped, unreadable = 0, []
    for key in DataKey.objects.only("pk", "workspace_id", "wrapped_key").iterator():
        try:
            fresh = _master_keys().rotate(key.wrapped_key.encode()).decode()
        except InvalidToken:
            unreadable.append(str(key.workspace_id))
            continue
        # Conditional, so a data key replaced meanwhile is not overwritten with the old one.
        rewrapped += DataKey.objects.filter(pk=key.pk, wrapped_key=key.wrapped_key).update(
            wrapped_key=fresh, rotated_at=timezone.now()
        )
        _data_keys.pop(str(key.workspace_id), None)
    return rewrapped, unreadable


def data_key_replace(*, workspace: WorkspaceRef) -> int:
    """Give a workspace a new data key and re-encrypt its registered secrets under it.

    Returns the number of values re-encrypted. All or nothing: one unreadable value
    (SecretUnreadable) leaves the workspace as it was.
    """
    workspace_id = _workspace_id(workspace)
    fields = _registered_fields()
    with transaction.atomic():
        row = DataKey.objects.select_for_update().get(workspace_id=workspace_id)
        old = _unwrap(row.wrapped_key)
        new_key = Fernet.generate_key()
        new = Fernet(new_key)
        count = 0
        for model, field in fields:
            rows = model._default_manager.filter(workspace_id=workspace_id).exclude(
                models.Q(**{field: ""}) | models.Q(**{f"{field}__isnull": True})
            )
            for pk, token in rows.values_list("pk", field):
                try:
                    plaintext = _open(old, token)
                except SecretUnreadable as exc:
                    label = model._meta.label
                    raise SecretUnreadable(f"{label}.{field} of {pk} cannot be read.") from exc
                model._default_manager.filter(pk=pk).update(**{field: _seal(new, plaintext)})
                count += 1
        row.wrapped_key = _wrap(new_key)
        row.rotated_at = timezone.now()
        row.save(update_fields=["wrapped_key", "rotated_at"])
    _data_keys.pop(workspace_id, None)
    return count


# --- Data keys -----------------------------------------------------------------


def _workspace_id(workspace: WorkspaceRef) -> str:
    return str(workspace.pk if isinstance(workspace, models.Model) else workspace)


def _current_data_key(workspace_id: str, *, create: bool = True) -> Fernet | None:
    # One small query each time, so a key replaced by another process is never used to
    # encrypt; the cache spares the unwrap.
    wrapped = (
        DataKey.objects.filter(workspace_id=workspace_id)
        .values_list("wrapped_key", flat=True)
        .first()
    )
    if wrapped is None:
        if not create:
            return None
        row, _ = DataKey.objects.get_or_create(
            workspace_id=workspace_id, defaults={"wrapped_key": _wrap(Fernet.generate_key())}
        )
        wrapped = row.wrapped_key
    cached = _data_keys.get(workspace_id)
    if cached and cached[0] == wrapped:
        return cached[1]
    data_key = _unwrap(wrapped)
    _data_keys[workspace_id] = (wrapped, data_key)
    return data_key


def _seal(data_key: Fernet, plaintext: bytes) -> str:
    return PREFIX + data_key.encrypt(plaintext).decode()


def _open(data_key: Fernet, token: str) -> bytes:
    if not token.startswith(PREFIX):
        raise SecretUnreadable("The stored value is not an encrypted secret.")
    try:
        return data_key.decrypt(token[len(PREFIX) :].encode())
    except InvalidToken as exc:
        raise SecretUnreadable(
            "The stored secret cannot be decrypted (it belongs to another workspace or was "
            "altered). Enter it again."
        ) from exc


def _wrap(data_key: bytes) -> str:
    return _master_keys().encrypt(data_key).decode()


def _unwrap(wrapped: str) -> Fernet:
    try:
        return Fernet(_master_keys().decrypt(wrapped.encode()))
    except InvalidToken as exc:
        raise SecretUnreadable(
            "The workspace's data key cannot be opened with any key in ORRERY_MASTER_KEYS "
            "(was a master key removed before `manage.py rotate_keys` ran?)."
        ) from exc


def _registered_fields() -> list[tuple[type[models.Model], str]]:
    found = []
    for label, field in sorted(_encrypted_fields):
        try:
            model = apps.get_model(label)
            model._meta.get_field(field)
            model._meta.get_field("workspace")
        except (LookupError, FieldDoesNotExist) as exc:
            raise ImproperlyConfigured(f"Encrypted field {label}.{field}: {exc}") from exc
        found.append((model, field))
    return found


# --- Master keys ---------------------------------------------------------------


def current_master_keys() -> list[str]:
    """The master keys in force, newest first (from the environment or, embedded, var/)."""
    keys = [key.strip() for key in settings.ORRERY_MASTER_KEYS if key.strip()]
    if not keys and settings.EMBEDDED:
        keys = _embedded_master_keys(Path(settings.VAR_DIR))
    if not keys:
        raise ImproperlyConfigured("ORRERY_MASTER_KEYS is empty.")
    return keys


def _master_keys() -> MultiFernet:
    return _multi_fernet(tuple(current_master_keys()))


@functools.lru_cache(maxsize=8)
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"ORRERY_MASTER_KEYS entry {position} is not a Fernet key (32 url-safe "
                "base64-encoded bytes)."
            ) from exc
    return MultiFernet(fernets)


def _embedded_master_keys(var_dir: Path) -> list[str]:
    """A master key generated once and kept in var/master_keys (one key per line)."""
    path = var_dir / "master_keys"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        # Written aside then linked into place: two processes starting together must not
        # each keep a different key, and the file is never readable by others.
        fd, temporary = tempfile.mkstemp(dir=var_dir, prefix=".master_keys.")
        try:
            with os.fdopen(fd, "w") as file:
                file.write(Fernet.generate_key().decode() + "\n")
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]
