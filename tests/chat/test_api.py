"""The apps management API (/api/apps…) with a workspace management key: through the
Django test client, and over real HTTP against the running server."""

import uuid
from decimal import Decimal

import httpx
import pytest
import yaml
from django.test import Client

from apps.chat.models import App, AppApiKey, Message, MessageFeedback
from apps.chat.services import apps as app_services
from apps.tenants.models import Role
from apps.tenants.services import api_key_create
from tests.chat.test_dsl import DIFY_0X_COMPLETION, DIFY_1X_CHAT

pytestmark = pytest.mark.django_db


def _api(team) -> Client:
    _, key = api_key_create(actor=team.members[Role.OWNER], name="tests")
    return Client(headers={"Authorization": f"Bearer {key}"})


@pytest.fixture
def api(team):
    return _api(team)


def _make(team, name="Helper", mode="chat") -> App:
    return app_services.app_create(actor=team.members[Role.OWNER], name=name, mode=mode)


def test_create_then_read_an_app(api, team):
    response = api.post(
        "/api/apps",
        {"name": "Support", "mode": "chat", "description": "Front desk", "icon": "🎧"},
        content_type="application/json",
    )
    assert response.status_code == 201
    created = response.json()
    assert (created["name"], created["mode"], created["icon"]) == ("Support", "chat", "🎧")
    assert created["config"]["pre_prompt"]
    assert created["site_path"].startswith("/chat/")
    detail = api.get(f"/api/apps/{created['id']}").json()
    assert detail == created
    assert App.objects.for_workspace(team.workspace).get().name == "Support"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "x", "mode": "chat", "workspace": "abc"}, "workspace"),
        ({"name": "x", "mode": "chat", "site_code": "mine"}, "site_code"),
        ({"name": "", "mode": "chat"}, "name"),
        ({"name": "x", "mode": "spreadsheet"}, "mode"),
        ({"name": "x", "mode": "workflow"}, "cannot be built yet"),
        ({"name": "x" * 101, "mode": "chat"}, "name"),
    ],
    ids=["workspace", "site-code", "empty-name", "bad-mode", "workflow", "long-name"],
)
def test_create_refuses_bad_or_server_decided_fields(api, team, body, message):
    response = api.post("/api/apps", body, content_type="application/json")
    assert response.status_code == 400
    assert message in response.json()["message"]
    assert not App.objects.for_workspace(team.workspace).exists()


def test_list_searches_filters_and_pages(api, team):
    for index in range(5):
        _make(team, name=f"Writer {index}", mode="completion")
    _make(team, name="Concierge", mode="chat")
    page = api.get("/api/apps", {"mode": "completion", "limit": 2}).json()
    assert page["total"] == 5 and page["has_more"] is True and len(page["data"]) == 2
    assert [app["name"] for app in page["data"]] == ["Writer 4", "Writer 3"]  # newest first
    last = api.get("/api/apps", {"mode": "completion", "limit": 2, "page": 3}).json()
    assert [app["name"] for app in last["data"]] == ["Writer 0"] and last["has_more"] is False
    found = api.get("/api/apps", {"search": "concier"}).json()
    assert [app["name"] for app in found["data"]] == ["Concierge"]
    assert api.get("/api/apps", {"limit": 1000}).status_code == 400
    empty = api.get("/api/apps", {"search": "nothing like it"}).json()
    assert empty["data"] == [] and empty["total"] == 0


def test_patch_changes_only_what_is_sent(api, team):
    app = _make(team)
    config = {**app.config, "opening_statement": "Hello there"}
    response = api.patch(
        f"/api/apps/{app.id}",
        {"name": "Renamed", "config": config, "enable_site": False, "rate_limit_per_minute": 30},
        content_type="application/json",
    )
    assert response.status_code == 200, response.json()
    app.refresh_from_db()
    assert app.name == "Renamed" and app.config["opening_statement"] == "Hello there"
    assert app.enable_site is False and app.rate_limit_per_minute == 30
    assert app.description == ""  # untouched


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"workspace": "x"}, "workspace"),
        ({"site_code": "chosen-by-me"}, "site_code"),
        ({"id": str(uuid.uuid4())}, "id"),
        ({"config": ["not", "an", "object"]}, "config"),
        ({"name": None}, "name cannot be null"),
        ({"rate_limit_per_minute": -1}, "rate_limit_per_minute"),
        ({"icon_background": "red; background:url(x)"}, "icon_background"),
    ],
    ids=["workspace", "site-code", "id", "config-list", "null-name", "negative", "colour"],
)
def test_patch_refuses_what_the_server_decides_or_bad_values(api, team, body, message):
    app = _make(team)
    before = (app.name, app.site_code, app.config)
    response = api.patch(f"/api/apps/{app.id}", body, content_type="application/json")
    assert response.status_code == 400
    assert message in response.json()["message"]
    app.refresh_from_db()
    assert (app.name, app.site_code, app.config) == before


@pytest.mark.parametrize(
    ("fallbacks", "message"),
    [
        ([{"provider": "anthropic", "name": "claude-3-5-haiku-20241022"}], "not a language model"),
        ([{"provider": "openai", "name": "gpt-4o-mini"}], "is the app's model already"),
        ([{"provider": "openai", "name": "gpt-4o"}] * 2, "in the fallback list twice"),
        ([{"provider": "openai", "name": n} for n in ("gpt-4o", "gpt-4.1", "o3", "gpt-5")], "3"),
        ("openai/gpt-4o", "must be a list"),
        ([{"provider": "openai"}], "must be a list"),
    ],
    ids=["not-set-up", "the-main-model", "twice", "too-many", "text", "no-name"],
)
def test_patch_refuses_a_bad_fallback_chain(api, ready, fallbacks, message):
    app = _make(ready)
    before = app.config
    model = {**app.config["model"], "provider": "openai", "name": "gpt-4o-mini"}
    config = {**app.config, "model": {**model, "fallbacks": fallbacks}}
    response = api.patch(f"/api/apps/{app.id}", {"config": config}, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_param"
    assert message in response.json()["message"]
    app.refresh_from_db()
    assert app.config == before
    good = {**config, "model": {**model, "fallbacks": [{"provider": "openai", "name": "gpt-4o"}]}}
    response = api.patch(f"/api/apps/{app.id}", {"config": good}, content_type="application/json")
    assert response.status_code == 200, response.json()


def test_delete_removes_the_app(api, team):
    app = _make(team)
    assert api.delete(f"/api/apps/{app.id}").status_code == 204
    assert not App.objects.filter(pk=app.pk).exists()
    assert api.delete(f"/api/apps/{app.id}").status_code == 404


def test_another_workspaces_app_is_not_found_whatever_the_body(api, team, other_team):
    theirs = _make(other_team, name="Theirs")
    for method, path, body in [
        ("get", f"/api/apps/{theirs.id}", None),
        ("patch", f"/api/apps/{theirs.id}", {"name": "Mine now"}),
        ("delete", f"/api/apps/{theirs.id}", None),
        ("get", f"/api/apps/{theirs.id}/export", None),
        ("get", f"/api/apps/{theirs.id}/messages", None),
        ("get", f"/api/apps/{theirs.id}/api-keys", None),
        ("post", f"/api/apps/{theirs.id}/api-keys", {"name": "x"}),
        ("post", f"/api/apps/{theirs.id}/api-keys", {"bogus": 1}),
        ("patch", f"/api/apps/{theirs.id}", {"workspace": "x"}),
        ("get", "/api/apps/not-a-uuid", None),
    ]:
        kwargs = {"content_type": "application/json"} if body is not None else {}
        response = getattr(api, method)(path, *([body] if body is not None else []), **kwargs)
        assert response.status_code == 404, (method, path, response.status_code)
        assert response.json()["code"] == "not_found"
    theirs.refresh_from_db()
    assert theirs.name == "Theirs"
    assert not AppApiKey.objects.filter(app=theirs).exists()
    assert api.get("/api/apps").json()["data"] == []


def test_import_yaml_body_and_json_body(api, team):
    response = api.post("/api/apps/import", DIFY_1X_CHAT, content_type="application/x-yaml")
    assert response.status_code == 201, response.json()
    first = response.json()
    assert first["mode"] == "chat" and first["name"] == "Returns helper"
    assert any("OpenAI is not set up" in w for w in first["warnings"])

    response = api.post(
        "/api/apps/import",
        {"yaml": DIFY_0X_COMPLETION, "name": "Taglines"},
        content_type="application/json",
    )
    assert response.status_code == 201
    second = App.objects.for_workspace(team.workspace).get(pk=response.json()["id"])
    assert (second.name, second.mode) == ("Taglines", "completion")


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ("- a\n- b\n", "application/x-yaml", "holds a list"),
        ("app: {name: x, mode: workflow}\n", "text/plain", "cannot be imported yet"),
        ('{"yaml": 5}', "application/json", "yaml"),
        ('{"yml": "x"}', "application/json", "yaml: Field required"),
        ("[1, 2]", "application/json", "JSON object"),
        ("x: " + "y" * (10 * 1024 * 1024), "application/x-yaml", "larger than 2 MB"),
        ("", "application/x-yaml", "empty"),
    ],
    ids=["a-list", "workflow", "yaml-not-text", "unknown-field", "json-list", "10-mb", "empty"],
)
def test_import_refuses_bad_files_with_a_message(api, team, body, content_type, message):
    response = api.post("/api/apps/import", body, content_type=content_type)
    assert response.status_code == 400
    assert message in response.json()["message"]
    assert not App.objects.for_workspace(team.workspace).exists()


def test_export_is_yaml_that_imports_back(api, team):
    app = _make(team, name="Round trip")
    response = api.get(f"/api/apps/{app.id}/export")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-yaml"
    assert 'filename="Round trip.yml"' in response["Content-Disposition"]
    text = response.content.decode()
    assert yaml.safe_load(text)["app"]["name"] == "Round trip"
    again = api.post("/api/apps/import", text, content_type="application/x-yaml")
    copy = App.objects.get(pk=again.json()["id"])
    assert copy.config == app.config


def test_api_keys_are_shown_once_listed_by_prefix_and_revoked(api, team):
    app = _make(team)
    response = api.post(
        f"/api/apps/{app.id}/api-keys", {"name": "backend"}, content_type="application/json"
    )
    assert response.status_code == 201
    created = response.json()
    assert created["key"].startswith("app-") and created["name"] == "backend"
    listed = api.get(f"/api/apps/{app.id}/api-keys").json()
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0] and created["key"] not in str(listed)
    # The key opens the app's Service API until revoked.
    from apps.chat.keys import app_api_key_authenticate

    assert app_api_key_authenticate(raw=created["key"]) == app
    assert api.delete(f"/api/apps/{app.id}/api-keys/{created['id']}").status_code == 204
    assert app_api_key_authenticate(raw=created["key"]) is None
    assert api.get(f"/api/apps/{app.id}/api-keys").json() == []
    assert api.delete(f"/api/apps/{app.id}/api-keys/not-a-uuid").status_code == 404
    # No body at all is fine: the name is optional.
    assert api.post(f"/api/apps/{app.id}/api-keys").status_code == 201


def test_a_key_of_another_app_cannot_be_revoked_through_this_one(api, team):
    mine, other = _make(team, name="Mine"), _make(team, name="Other")
    created = api.post(f"/api/apps/{other.id}/api-keys").json()
    assert api.delete(f"/api/apps/{mine.id}/api-keys/{created['id']}").status_code == 404
    assert AppApiKey.objects.get(pk=created["id"]).revoked_at is None


def test_messages_are_paginated_newest_first_with_usage_and_feedback(api, team):
    app = _make(team)
    for index in range(3):
        message = Message.objects.create(
            workspace=team.workspace,
            app=app,
            from_source="api",
            query=f"question {index}",
            answer=f"answer {index}",
            status="normal",
            model_provider="openai",
            model_name="gpt-4o-mini",
            message_tokens=10 + index,
            answer_tokens=20,
            total_price=Decimal("0.0000450"),
            latency=1.25,
            first_token_latency=0.2,
        )
    MessageFeedback.objects.create(
        workspace=team.workspace,
        message=message,
        rating="like",
        content="spot on",
        from_source="user",
    )
    page = api.get(f"/api/apps/{app.id}/messages", {"limit": 2}).json()
    assert page["total"] == 3 and page["has_more"] is True
    newest = page["data"][0]
    assert newest["query"] == "question 2" and newest["answer"] == "answer 2"
    assert newest["total_tokens"] == 32 and newest["total_price"] == "0.0000450"
    assert newest["latency"] == 1.25 and newest["first_token_latency"] == 0.2
    assert newest["feedback"] == {"rating": "like", "content": "spot on"}
    assert newest["admin_feedback"] is None
    rest = api.get(f"/api/apps/{app.id}/messages", {"limit": 2, "page": 2}).json()
    assert [m["query"] for m in rest["data"]] == ["question 0"]
    empty = _make(team, name="Quiet")
    assert api.get(f"/api/apps/{empty.id}/messages").json()["data"] == []


def test_a_key_is_needed(team):
    assert Client().get("/api/apps").status_code == 401


def test_over_real_http_import_export_and_keys(live_server_url, transactional_db):
    from tests.conftest import make_team

    team = make_team("Live Harbour", "live")
    _, key = api_key_create(actor=team.members[Role.OWNER], name="live")
    with httpx.Client(
        base_url=live_server_url, headers={"Authorization": f"Bearer {key}"}, timeout=10
    ) as http:
        imported = http.post(
            "/api/apps/import",
            content=DIFY_1X_CHAT.encode(),
            headers={"Content-Type": "application/x-yaml"},
        )
        assert imported.status_code == 201, imported.text
        app_id = imported.json()["id"]
        exported = http.get(f"/api/apps/{app_id}/export")
        assert exported.headers["content-type"] == "application/x-yaml"
        document = yaml.safe_load(exported.text)
        assert document["model_config"]["model"]["provider"] == "langgenius/openai/openai"
        created = http.post(f"/api/apps/{app_id}/api-keys", json={"name": "live"})
        assert created.status_code == 201 and created.json()["key"].startswith("app-")
        huge = http.post(
            "/api/apps/import",
            content=b"x: " + b"y" * (10 * 1024 * 1024),
            headers={"Content-Type": "application/x-yaml"},
        )
        assert huge.status_code == 400 and "larger than" in huge.json()["message"]
        listed = http.get("/api/apps").json()
        assert [app["id"] for app in listed["data"]] == [app_id]


def test_export_names_the_file_after_the_app_in_any_script(api, team):
    app = _make(team, name="Café 日本")
    response = api.get(f"/api/apps/{app.id}/export")
    assert response["Content-Disposition"] == (
        "attachment; filename*=utf-8''Caf%C3%A9%20%E6%97%A5%E6%9C%AC.yml"
    )
