"""Apps are created, changed and deleted by builders only; app keys open one app."""

import pytest

from apps.chat import keys, selectors
from apps.chat.models import App
from apps.chat.services import apps as app_services
from apps.core.errors import DomainError, NotFound, PermissionDenied
from apps.tenants.models import Role

pytestmark = pytest.mark.django_db


def test_an_editor_creates_a_chat_app_with_a_public_link(team):
    app = app_services.app_create(actor=team.members[Role.EDITOR], name=" Helpdesk ", mode="chat")
    assert app.name == "Helpdesk"
    assert app.config["pre_prompt"]
    assert len(app.site_code) >= 16
    assert list(selectors.app_list(workspace=team.workspace, search="help")) == [app]


def test_a_normal_member_cannot_create_apps(team):
    with pytest.raises(PermissionDenied):
        app_services.app_create(actor=team.members[Role.NORMAL], name="x", mode="chat")


def test_modes_not_built_yet_are_refused_with_a_reason(team):
    with pytest.raises(DomainError, match="cannot be built yet"):
        app_services.app_create(actor=team.members[Role.OWNER], name="x", mode="workflow")


def test_another_workspace_cannot_fetch_the_app(team, other_team):
    app = app_services.app_create(actor=team.members[Role.OWNER], name="Mine", mode="chat")
    with pytest.raises(NotFound):
        selectors.app_get(workspace=other_team.workspace, app_id=app.id)
    with pytest.raises(NotFound):
        selectors.app_get(workspace=team.workspace, app_id="not-a-uuid")


def test_duplicate_copies_the_configuration_under_a_new_link(team):
    owner = team.members[Role.OWNER]
    app = app_services.app_create(actor=owner, name="Writer", mode="completion")
    app_services.app_update(actor=owner, app=app, config={**app.config, "pre_prompt": "Hi {{x}}"})
    copy = app_services.app_duplicate(actor=owner, app=app)
    assert copy.name == "Writer (copy)" and copy.config["pre_prompt"] == "Hi {{x}}"
    assert copy.site_code != app.site_code


def test_update_refuses_fields_the_server_decides(team):
    owner = team.members[Role.OWNER]
    app = app_services.app_create(actor=owner, name="Writer", mode="chat")
    with pytest.raises(DomainError, match="workspace"):
        app_services.app_update(actor=owner, app=app, workspace=None)


def test_an_app_key_opens_its_app_until_revoked(team):
    owner = team.members[Role.OWNER]
    app = app_services.app_create(actor=owner, name="Bot", mode="chat")
    key, raw = keys.app_api_key_create(actor=owner, app=app)
    assert raw.startswith("app-") and raw not in key.key_hash
    assert keys.app_api_key_authenticate(raw=raw) == app
    keys.app_api_key_revoke(actor=owner, app=app, key_id=key.id)
    assert keys.app_api_key_authenticate(raw=raw) is None
    assert keys.app_api_key_authenticate(raw="app-forged") is None


def test_a_key_stops_working_when_the_api_is_disabled(team):
    owner = team.members[Role.OWNER]
    app = app_services.app_create(actor=owner, name="Bot", mode="chat")
    _, raw = keys.app_api_key_create(actor=owner, app=app)
    app_services.app_update(actor=owner, app=app, enable_api=False)
    assert keys.app_api_key_authenticate(raw=raw) is None
    assert App.objects.filter(pk=app.pk).exists()
