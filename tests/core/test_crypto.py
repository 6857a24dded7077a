import base64
import os
import stat
import subprocess
import sys
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from apps.core import crypto
from apps.core.crypto import (
    SecretUnreadable,
    decrypt_json,
    decrypt_secret,
    encrypt_json,
    encrypt_secret,
    mask_secret,
)
from apps.core.models import DataKey
from apps.tenants.models import Invitation, Role

SECRET = "sk-live-4f9c2e7a1b3d5f7091a2b4c6d8e0f123"


@pytest.fixture(autouse=True)
def master_key(settings) -> str:
    key = Fernet.generate_key().decode()
    settings.ORRERY_MASTER_KEYS = [key]
    crypto.clear_key_cache()
    yield key
    crypto.clear_key_cache()


def _raw_data_key_rows() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {DataKey._meta.db_table}")  # noqa: S608
        return cursor.fetchall()


def _switch_master_keys(settings, keys: list[str]) -> None:
    settings.ORRERY_MASTER_KEYS = keys
    crypto.clear_key_cache()


def test_a_secret_round_trips(team):
    token = encrypt_secret(team.workspace, SECRET)
    assert token.startswith("enc1:")
    assert decrypt_secret(team.workspace, token) == SECRET
    assert decrypt_secret(team.workspace.pk, token) == SECRET  # an id will do too


def test_json_round_trips(team):
    data = {"api_key": SECRET, "base_url": "https://api.example.com/v1", "note": "Grüße ✓"}
    assert decrypt_json(team.workspace, encrypt_json(team.workspace, data)) == data


def test_the_same_secret_encrypts_differently_each_time(team):
    assert encrypt_secret(team.workspace, SECRET) != encrypt_secret(team.workspace, SECRET)


def test_a_workspace_cannot_decrypt_another_workspaces_secret(team, other_team):
    token = encrypt_secret(team.workspace, SECRET)
    encrypt_secret(other_team.workspace, "theirs")  # the other workspace has a data key too
    with pytest.raises(SecretUnreadable):
        decrypt_secret(other_team.workspace, token)


def test_a_workspace_without_a_data_key_reads_nothing(team, other_team):
    token = encrypt_secret(team.workspace, SECRET)
    with pytest.raises(SecretUnreadable):
        decrypt_secret(other_team.workspace, token)
    assert not DataKey.objects.filter(workspace=other_team.workspace).exists()


def test_the_database_never_holds_the_plaintext_or_the_bare_data_key(master_key, team):
    token = encrypt_secret(team.workspace, SECRET)
    wrapped = DataKey.objects.get(workspace=team.workspace).wrapped_key
    data_key = Fernet(master_key).decrypt(wrapped.encode())

    rows = _raw_data_key_rows()
    assert len(rows) == 1
    dump = repr(rows).encode()
    assert SECRET.encode() not in dump
    assert data_key not in dump
    assert data_key not in base64.urlsafe_b64decode(wrapped)
    assert SECRET not in token
    assert SECRET.encode() not in base64.urlsafe_b64decode(token.removeprefix("enc1:"))
    assert Fernet(data_key).decrypt(token.removeprefix("enc1:").encode()) == SECRET.encode()


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda t: t[:-6] + ("A" if t[-6] != "A" else "B") + t[-5:], id="flipped"),
        pytest.param(lambda t: t[:40], id="truncated"),
        pytest.param(lambda t: t.removeprefix("enc1:"), id="prefix-missing"),
        pytest.param(lambda t: SECRET, id="plaintext"),
        pytest.param(lambda t: "enc1:", id="empty"),
    ],
)
def test_a_tampered_token_is_unreadable(team, tamper):
    token = encrypt_secret(team.workspace, SECRET)
    with pytest.raises(SecretUnreadable) as caught:
        decrypt_secret(team.workspace, tamper(token))
    assert caught.value.code == "secret_unreadable"
    assert SECRET not in caught.value.message


def test_an_unknown_master_key_makes_secrets_unreadable(settings, team):
    token = encrypt_secret(team.workspace, SECRET)
    _switch_master_keys(settings, [Fernet.generate_key().decode()])
    with pytest.raises(SecretUnreadable, match="ORRERY_MASTER_KEYS"):
        decrypt_secret(team.workspace, token)


def test_old_secrets_stay_readable_after_a_new_master_key_is_put_first(settings, master_key, team):
    token = encrypt_secret(team.workspace, SECRET)
    _switch_master_keys(settings, [Fernet.generate_key().decode(), master_key])
    assert decrypt_secret(team.workspace, token) == SECRET


def test_rotate_keys_lets_the_old_master_key_go(settings, master_key, team, other_team, capsys):
    blue = encrypt_secret(team.workspace, SECRET)
    crimson = encrypt_secret(other_team.workspace, "crimson-secret")
    new_key = Fernet.generate_key().decode()
    _switch_master_keys(settings, [new_key, master_key])

    call_command("rotate_keys")

    assert "Re-wrapped 2 data keys" in capsys.readouterr().out
    _switch_master_keys(settings, [new_key])
    assert decrypt_secret(team.workspace, blue) == SECRET
    assert decrypt_secret(other_team.workspace, crimson) == "crimson-secret"
    assert all(key.rotated_at for key in DataKey.objects.all())


def test_rotate_keys_reports_a_data_key_no_master_key_opens(settings, team, capsys):
    encrypt_secret(team.workspace, SECRET)
    _switch_master_keys(settings, [Fernet.generate_key().decode()])
    with pytest.raises(CommandError, match="1 workspace"):
        call_command("rotate_keys")
    assert str(team.workspace.pk) in capsys.readouterr().err


@pytest.fixture
def encrypted_invitation_email(monkeypatch):
    """Registers a column as encrypted for the test. Any workspace-owned text column will
    do; Invitation.email is long enough to hold a token."""
    monkeypatch.setattr(crypto, "_encrypted_fields", set())
    crypto.register_encrypted_field("tenants.Invitation", "email")


def _invitation(workspace, email: str) -> Invitation:
    return Invitation.objects.create(
        workspace=workspace,
        email=email,
        role=Role.NORMAL,
        token_hash=os.urandom(16).hex(),
        expires_at=timezone.now() + timedelta(days=1),
    )


def test_rotating_data_keys_re_encrypts_registered_fields(
    encrypted_invitation_email, team, other_team, capsys
):
    mine = _invitation(team.workspace, encrypt_secret(team.workspace, "sk-blue"))
    theirs = _invitation(other_team.workspace, encrypt_secret(other_team.workspace, "sk-red"))
    _invitation(team.workspace, "")  # empty values are left alone
    old_data_key = crypto._current_data_key(str(team.workspace.pk))
    old_wrapped = DataKey.objects.get(workspace=team.workspace).wrapped_key

    call_command("rotate_keys", "--data-keys")

    out = capsys.readouterr().out
    assert "Re-encrypting tenants.Invitation.email." in out
    assert "Replaced 2 data keys and re-encrypted 2 secrets" in out
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert decrypt_secret(team.workspace, mine.email) == "sk-blue"
    assert decrypt_secret(other_team.workspace, theirs.email) == "sk-red"
    assert DataKey.objects.get(workspace=team.workspace).wrapped_key != old_wrapped
    with pytest.raises(SecretUnreadable):
        crypto._open(old_data_key, mine.email)


def test_an_unreadable_value_leaves_its_workspace_unrotated(
    encrypted_invitation_email, team, capsys
):
    good = _invitation(team.workspace, encrypt_secret(team.workspace, "sk-blue"))
    bad = _invitation(team.workspace, "enc1:not-a-token")

    with pytest.raises(CommandError, match="1 workspace"):
        call_command("rotate_keys", "--data-keys")

    assert f"tenants.Invitation.email of {bad.pk} cannot be read" in capsys.readouterr().err
    token = good.email
    good.refresh_from_db()
    assert good.email == token  # not re-encrypted ...
    crypto.clear_key_cache()
    assert decrypt_secret(team.workspace, token) == "sk-blue"  # ... and the data key is the same


def test_data_keys_are_not_replaced_when_no_field_is_registered(monkeypatch, team):
    monkeypatch.setattr(crypto, "_encrypted_fields", set())
    token = encrypt_secret(team.workspace, SECRET)
    with pytest.raises(CommandError, match="No encrypted fields are registered"):
        call_command("rotate_keys", "--data-keys")
    crypto.clear_key_cache()
    assert decrypt_secret(team.workspace, token) == SECRET


def test_a_data_key_replaced_by_another_process_is_picked_up(encrypted_invitation_email, team):
    workspace_id = str(team.workspace.pk)
    invitation = _invitation(team.workspace, encrypt_secret(team.workspace, "sk-blue"))
    stale = crypto._data_keys[workspace_id]

    crypto.data_key_replace(workspace=team.workspace)
    crypto._data_keys[workspace_id] = stale  # what a second process still has in memory

    invitation.refresh_from_db()
    assert decrypt_secret(team.workspace, invitation.email) == "sk-blue"
    fresh_token = encrypt_secret(team.workspace, "sk-new")
    crypto.clear_key_cache()
    assert decrypt_secret(team.workspace, fresh_token) == "sk-new"


def test_registering_a_missing_field_is_a_configuration_error(monkeypatch, team):
    monkeypatch.setattr(crypto, "_encrypted_fields", set())
    crypto.register_encrypted_field("tenants.Invitation", "no_such_column")
    encrypt_secret(team.workspace, SECRET)
    with pytest.raises(ImproperlyConfigured, match="no_such_column"):
        crypto.data_key_replace(workspace=team.workspace)


def test_a_malformed_master_key_is_a_configuration_error(settings, team):
    _switch_master_keys(settings, ["not-a-fernet-key"])
    with pytest.raises(ImproperlyConfigured, match="entry 1"):
        encrypt_secret(team.workspace, SECRET)


def test_embedded_mode_generates_a_private_master_key_once(settings, tmp_path, team):
    settings.ORRERY_MASTER_KEYS = []
    settings.EMBEDDED = True
    settings.VAR_DIR = tmp_path
    token = encrypt_secret(team.workspace, SECRET)
    path = tmp_path / "master_keys"
    first = path.read_text()

    crypto.clear_key_cache()
    assert decrypt_secret(team.workspace, token) == SECRET
    assert path.read_text() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [path]


def test_production_mode_refuses_to_start_without_master_keys():
    env = {k: v for k, v in os.environ.items() if k != "ORRERY_MASTER_KEYS"}
    env.update(DATABASE_URL="postgres://orrery@localhost:5432/orrery", SECRET_KEY="x" * 50)
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ORRERY_MASTER_KEYS must be set" in result.stderr
    assert "Fernet.generate_key()" in result.stderr


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        pytest.param("sk-abcdefghijklmnopqrstuvwxyz", "sk-ab…yz", id="api-key"),
        pytest.param("123456789", "12345…89", id="nine-characters"),
        pytest.param("12345678", "••••", id="eight-characters"),
        pytest.param("abc", "••••", id="short"),
        pytest.param("", "", id="empty"),
    ],
)
def test_mask_secret(value, masked):
    assert mask_secret(value) == masked
