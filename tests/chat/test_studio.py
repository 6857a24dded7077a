"""The studio's apps list and app pages: editors build, normal members use, dataset operators
stay out; bad input is a form error, never a 500; a configuration saved is the one shown."""

from html import unescape

import pytest
from django.urls import reverse

from apps.chat.models import App, AppApiKey
from apps.chat.services import apps as app_services
from apps.tenants.models import Role
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def make_app(team, name="Helpdesk", mode="chat", **config):
    app = app_services.app_create(actor=team.members[Role.EDITOR], name=name, mode=mode)
    if config:
        app.config.update(config)
        app.save()
    return app


# --- The apps list --------------------------------------------------------------------


def test_an_empty_workspace_says_how_to_start(team):
    response = team.client(Role.EDITOR).get(reverse("apps"))
    assert response.status_code == 200
    assert b"No apps yet" in response.content
    assert b"Create an app" in response.content


def test_an_editor_creates_a_chat_app_and_lands_on_its_configuration(ready):
    response = ready.client(Role.EDITOR).post(
        reverse("app_create"), {"name": "Support bot", "mode": "chat", "icon": "🛟"}
    )
    app = App.objects.get(workspace=ready.workspace, name="Support bot")
    assert response.status_code == 302
    assert response["Location"] == reverse("app_configure", args=[app.id])
    assert app.icon == "🛟"
    page = ready.client(Role.EDITOR).get(response["Location"])
    assert page.status_code == 200
    assert b"Support bot" in page.content


@pytest.mark.parametrize(
    "data, error",
    [
        ({"name": "", "mode": "chat"}, b"This field is required"),
        ({"name": "x" * 101, "mode": "chat"}, b"at most 100 characters"),
        ({"name": "Flow", "mode": "workflow"}, b"Select a valid choice"),
        ({"name": ["a", "b"], "mode": ["chat", "x"]}, b"Select a valid choice"),
    ],
)
def test_bad_creation_input_is_a_form_error(team, data, error):
    response = team.client(Role.EDITOR).post(reverse("app_create"), data)
    assert response.status_code == 400
    assert error in response.content
    assert not App.objects.filter(workspace=team.workspace).exists()


def test_search_filter_and_pagination(team):
    for index in range(26):
        make_app(team, name=f"Writer {index:02}", mode="completion")
    make_app(team, name="Helpdesk", mode="chat")
    client = team.client(Role.EDITOR)
    found = client.get(reverse("apps"), {"q": "help"})
    assert found.content.count(b'data-testid="app-card"') == 1
    chats = client.get(reverse("apps"), {"mode": "chat"})
    assert chats.content.count(b'data-testid="app-card"') == 1
    first = client.get(reverse("apps"), {"mode": "completion"})
    assert first.content.count(b'data-testid="app-card"') == 24
    assert b"Page 1 of 2" in first.content
    second = client.get(reverse("apps"), {"mode": "completion", "page": 2})
    assert second.content.count(b'data-testid="app-card"') == 2
    none = client.get(reverse("apps"), {"q": "nothing like it"})
    assert b"No apps match" in none.content


def test_rename_icon_description_and_duplicate(team):
    app = make_app(team)
    client = team.client(Role.EDITOR)
    client.post(
        reverse("app_edit", args=[app.id]),
        {"name": "Front desk", "icon": "🙂", "description": "Answers visitors"},
    )
    app.refresh_from_db()
    assert (app.name, app.icon, app.description) == ("Front desk", "🙂", "Answers visitors")
    bad = client.post(reverse("app_edit", args=[app.id]), {"name": ""}, follow=True)
    assert b"Name: This field is required" in bad.content
    client.post(reverse("app_duplicate", args=[app.id]))
    copy = App.objects.get(workspace=team.workspace, name="Front desk (copy)")
    assert copy.config == app.config and copy.site_code != app.site_code


def test_delete_needs_the_typed_name(team):
    app = make_app(team)
    client = team.client(Role.EDITOR)
    refused = client.post(
        reverse("app_delete", args=[app.id]), {"confirm_name": "helpdesk"}, follow=True
    )
    assert "Type the app's name" in unescape(refused.content.decode())
    assert App.objects.filter(pk=app.pk).exists()
    client.post(reverse("app_delete", args=[app.id]), {"confirm_name": "Helpdesk"})
    assert not App.objects.filter(pk=app.pk).exists()


def test_a_normal_member_sees_apps_but_no_edit_controls(team):
    app = make_app(team)
    client = team.client(Role.NORMAL)
    response = client.get(reverse("apps"))
    assert response.status_code == 200
    assert b"Helpdesk" in response.content
    assert b"Open web app" in response.content
    for marker in (b"Create an app", b"Delete app", b"Duplicate", b"app_configure"):
        assert marker not in response.content
    assert reverse("app_configure", args=[app.id]).encode() not in response.content
    for name in ("app_configure", "app_publish", "app_logs", "app_annotations"):
        assert client.get(reverse(name, args=[app.id])).status_code == 403
    assert client.post(reverse("app_create"), {"name": "x", "mode": "chat"}).status_code == 403
    assert client.post(reverse("app_delete", args=[app.id]), {"confirm_name": "Helpdesk"})
    assert App.objects.filter(pk=app.pk).exists()


def test_a_dataset_operator_has_no_access_to_apps(team):
    app = make_app(team)
    client = team.client(Role.DATASET_OPERATOR)
    assert client.get(reverse("apps")).status_code == 403
    assert client.get(reverse("app_configure", args=[app.id])).status_code == 403
    assert client.get(reverse("home"))["Location"] == reverse("knowledge")


def test_another_workspaces_app_is_not_found(team, other_team):
    app = make_app(team)
    client = other_team.client(Role.OWNER)
    for name in ("app_configure", "app_publish", "app_logs", "app_annotations"):
        assert client.get(reverse(name, args=[app.id])).status_code == 404
    client.post(reverse("app_delete", args=[app.id]), {"confirm_name": "Helpdesk"})
    assert App.objects.filter(pk=app.pk).exists()
    listing = client.get(reverse("apps"))
    assert b"Helpdesk" not in listing.content


# --- Configuration --------------------------------------------------------------------


def config_post(**changes):
    data = {
        "model": "openai/gpt-4o-mini",
        "param_temperature": "0.3",
        "param_max_tokens": "512",
        "pre_prompt": "You answer questions about {{product}} in {{tone}} words.",
        "var-0-type": "text-input",
        "var-0-variable": "product",
        "var-0-label": "Product",
        "var-0-required": "true",
        "var-0-max_length": "60",
        "var-1-type": "select",
        "var-1-variable": "tone",
        "var-1-label": "Tone",
        "var-1-options": "plain\nfriendly\n",
        "var-2-variable": "",
        "var-2-label": "",
        "opening_statement": "Hello! What can I do?",
        "suggested_questions": "How do I start?\n\nWhat does it cost?",
        "suggested_questions_after_answer": "true",
        "memory_window_enabled": "true",
        "memory_window_size": "6",
        "memory_max_tokens": "3000",
        "stop": "END\nObservation:",
        "moderation_enabled": "true",
        "moderation_type": "keywords",
        "moderation_keywords": "secret\nforbidden\n",
        "moderation_inputs_enabled": "true",
        "moderation_inputs_preset": "I cannot talk about that.",
        "annotation_enabled": "true",
        "annotation_score_threshold": "0.85",
        "annotation_embedding_model": "openai/text-embedding-3-small",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_the_configuration_round_trips(ready):
    app = make_app(ready)
    client = ready.client(Role.EDITOR)
    response = client.post(reverse("app_configure", args=[app.id]), config_post())
    assert response.status_code == 302, response.content.decode()[:3000]
    app.refresh_from_db()
    config = app.config
    assert config["model"]["provider"] == "openai" and config["model"]["name"] == "gpt-4o-mini"
    params = config["model"]["completion_params"]
    assert params["temperature"] == 0.3 and params["max_tokens"] == 512
    assert config["user_input_form"] == [
        {
            "text-input": {
                "label": "Product",
                "variable": "product",
                "required": True,
                "default": "",
                "max_length": 60,
            }
        },
        {
            "select": {
                "label": "Tone",
                "variable": "tone",
                "required": False,
                "default": "",
                "options": ["plain", "friendly"],
            }
        },
    ]
    assert config["suggested_questions"] == ["How do I start?", "What does it cost?"]
    assert config["suggested_questions_after_answer"] == {"enabled": True}
    assert config["memory"] == {"window": {"enabled": True, "size": 6}, "max_tokens": 3000}
    assert config["stop"] == ["END", "Observation:"]
    moderation = config["sensitive_word_avoidance"]
    assert moderation["enabled"] and moderation["type"] == "keywords"
    assert moderation["config"]["keywords"] == "secret\nforbidden"
    assert moderation["config"]["inputs_config"] == {
        "enabled": True,
        "preset_response": "I cannot talk about that.",
    }
    assert config["annotation_reply"] == {
        "enabled": True,
        "score_threshold": 0.85,
        "embedding_model": {
            "embedding_provider_name": "openai",
            "embedding_model_name": "text-embedding-3-small",
        },
    }
    # Keys the page does not edit survive.
    assert config["file_upload"]["image"]["number_limits"] == 3

    page = client.get(reverse("app_configure", args=[app.id])).content.decode()
    assert 'value="openai/gpt-4o-mini" selected' in page
    assert 'name="param_temperature" value="0.3"' in page
    assert 'value="product"' in page and "plain\nfriendly</textarea>" in page
    assert "Hello! What can I do?" in page
    assert "END\nObservation:</textarea>" in page
    assert 'name="memory_window_size" min="1" max="100" value="6"' in page
    assert 'value="openai/text-embedding-3-small" selected' in page


@pytest.mark.parametrize(
    "changes, field_error",
    [
        ({"model": "openai/no-such-model"}, "Choose one of the workspace's models."),
        ({"param_temperature": "9"}, "Temperature must be between 0 and 2."),
        ({"var-0-variable": "2fast"}, "Use letters, digits and _"),
        ({"var-1-variable": "product"}, "Another variable already has this name."),
        ({"var-1-options": ""}, "List the choices, one per line."),
        ({"var-0-label": ""}, "Give it a label"),
        ({"var-0-max_length": "-3"}, "A whole number between 1 and 100000."),
        ({"pre_prompt": "Talk about {{planet}}"}, "The prompt uses {{planet}}"),
        ({"memory_window_size": "0"}, "A whole number between 1 and 100."),
        ({"memory_max_tokens": "900000"}, "The model reads at most"),
        ({"stop": "a\nb\nc\nd\ne"}, "At most 4 stop sequences"),
        ({"moderation_keywords": ""}, "List the words to block"),
        ({"moderation_inputs_preset": ""}, "Write the reply given instead."),
        ({"moderation_type": "openai_moderation"}, "the workspace's moderation models."),
        ({"annotation_score_threshold": "2"}, "A number between 0.5 and 1."),
        ({"annotation_embedding_model": "openai/gpt-4o-mini"}, "Choose an embedding model."),
        ({"datasets": "not-a-dataset"}, "Choose knowledge bases of this workspace."),
    ],
)
def test_bad_configuration_is_shown_by_the_field_and_nothing_is_saved(ready, changes, field_error):
    app = make_app(ready)
    before = dict(app.config)
    response = ready.client(Role.EDITOR).post(
        reverse("app_configure", args=[app.id]), config_post(**changes)
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert field_error in unescape(page), unescape(page)[:200]
    assert "The configuration was not saved" in page
    app.refresh_from_db()
    assert app.config == before


def test_an_unknown_prompt_variable_keeps_what_was_typed(ready):
    app = make_app(ready)
    response = ready.client(Role.EDITOR).post(
        reverse("app_configure", args=[app.id]),
        config_post(pre_prompt="About {{planet}} please", opening_statement="Hi there"),
    )
    page = response.content.decode()
    assert "About {{planet}} please</textarea>" in page
    assert "Hi there</textarea>" in page
    assert 'value="tone"' in page


def test_garbage_configuration_never_crashes(ready):
    app = make_app(ready)
    client = ready.client(Role.EDITOR)
    for data in (
        {},
        {"model": ["a", "b"], "var-0-variable": ["x", "y"], "pre_prompt": "x" * 200_000},
        {"var-999-variable": "a", "memory_max_tokens": "abc", "annotation_score_threshold": "nan"},
    ):
        response = client.post(reverse("app_configure", args=[app.id]), data)
        assert response.status_code == 400


def test_parameters_follow_the_model_picked(ready):
    app = make_app(ready)
    client = ready.client(Role.EDITOR)
    response = client.get(reverse("app_parameters", args=[app.id]), {"model": "openai/gpt-5"})
    assert b"Reasoning effort" in response.content
    unknown = client.get(reverse("app_parameters", args=[app.id]), {"model": "nope/nope"})
    assert b"declares no parameters" in unknown.content


def test_the_knowledge_slot_attaches_this_workspaces_datasets(ready, other_team):
    from apps.datasets.models import Dataset

    mine = Dataset.objects.create(
        workspace=ready.workspace, name="Manuals", permission="all_team_members"
    )
    theirs = Dataset.objects.create(workspace=other_team.workspace, name="Their secrets")
    app = make_app(ready)
    client = ready.client(Role.EDITOR)
    page = client.get(reverse("app_configure", args=[app.id])).content
    assert b"Manuals" in page and b"Their secrets" not in page
    refused = client.post(
        reverse("app_configure", args=[app.id]), config_post(datasets=str(theirs.id))
    )
    assert refused.status_code == 400
    client.post(reverse("app_configure", args=[app.id]), config_post(datasets=str(mine.id)))
    app.refresh_from_db()
    assert app.config["dataset_configs"]["datasets"]["datasets"] == [
        {"dataset": {"enabled": True, "id": str(mine.id)}}
    ]


def test_a_text_generator_has_no_conversation_settings(ready):
    app = make_app(ready, name="Writer", mode="completion")
    page = ready.client(Role.EDITOR).get(reverse("app_configure", args=[app.id])).content
    assert b"Opening statement" not in page and b"Prompt template" in page
    response = ready.client(Role.EDITOR).post(
        reverse("app_configure", args=[app.id]),
        {
            "model": "openai/gpt-4o-mini",
            "pre_prompt": "",
            "annotation_score_threshold": "0.9",
        },
    )
    assert "A text generator needs a prompt." in response.content.decode()


# --- Publishing -----------------------------------------------------------------------


def test_publishing_settings_public_link_and_keys(team):
    app = make_app(team)
    client = team.client(Role.EDITOR)
    page = client.get(reverse("app_publish", args=[app.id]))
    assert app.site_code.encode() in page.content
    assert b"&lt;iframe" in page.content and b"embed.js" in page.content
    response = client.post(
        reverse("app_publish", args=[app.id]),
        {
            "enable_site": "on",
            "site_requires_login": "on",
            "rate_limit_per_minute": "30",
            "end_user_rate_limit_per_minute": "5",
            "max_active_requests": "3",
        },
    )
    assert response.status_code == 302
    app.refresh_from_db()
    assert app.enable_site and app.site_requires_login and not app.enable_api
    limits = (app.rate_limit_per_minute, app.end_user_rate_limit_per_minute)
    assert limits == (30, 5) and app.max_active_requests == 3
    bad = client.post(
        reverse("app_publish", args=[app.id]),
        {"rate_limit_per_minute": "-1", "end_user_rate_limit_per_minute": "x"},
    )
    assert bad.status_code == 400
    assert b"greater than or equal to 0" in bad.content

    old_code = app.site_code
    client.post(reverse("app_site_regenerate", args=[app.id]))
    app.refresh_from_db()
    assert app.site_code != old_code

    created = client.post(reverse("app_key_create", args=[app.id]), {"name": "backend"})
    assert created.status_code == 201
    key = AppApiKey.objects.get(app=app)
    assert b'data-testid="new-app-key"' in created.content
    assert key.prefix.encode() in created.content
    again = client.get(reverse("app_publish", args=[app.id]))
    assert b"new-app-key" not in again.content and key.prefix.encode() in again.content
    client.post(reverse("app_key_revoke", args=[app.id, key.id]))
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_a_key_of_another_app_cannot_be_revoked_through_this_one(team):
    app, other = make_app(team), make_app(team, name="Other")
    from apps.chat import keys

    key, _ = keys.app_api_key_create(actor=team.members[Role.EDITOR], app=other)
    response = team.client(Role.EDITOR).post(reverse("app_key_revoke", args=[app.id, key.id]))
    assert response.status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_owner_and_admin_build_too(team):
    app = make_app(team)
    for role in (Role.OWNER, Role.ADMIN):
        assert team.client(role).get(reverse("app_configure", args=[app.id])).status_code == 200


def test_pages_escape_what_people_wrote(team):
    app = make_app(team, name="<script>alert(1)</script>")
    app.description = "<img src=x onerror=alert(2)>"
    app.save()
    for name in ("apps",):
        content = client_for(team.owner).get(reverse(name)).content
        assert b"<script>alert(1)" not in content and b"<img src=x" not in content
    content = client_for(team.owner).get(reverse("app_configure", args=[app.id])).content
    assert b"<script>alert(1)" not in content


def test_switched_off_features_keep_their_settings(ready):
    """Hidden fields are not sent by the browser: turning a feature off keeps its settings."""
    app = make_app(ready)
    client = ready.client(Role.EDITOR)
    client.post(reverse("app_configure", args=[app.id]), config_post())
    data = config_post(moderation_enabled=None, annotation_enabled=None)
    for name in list(data):
        if name.startswith(("moderation_", "annotation_")):
            del data[name]
    response = client.post(reverse("app_configure", args=[app.id]), data)
    assert response.status_code == 302
    app.refresh_from_db()
    moderation, reply = app.config["sensitive_word_avoidance"], app.config["annotation_reply"]
    assert not moderation["enabled"] and moderation["config"]["keywords"] == "secret\nforbidden"
    assert not reply["enabled"] and reply["score_threshold"] == 0.85


def test_knowledge_retrieval_settings_round_trip_and_are_checked(ready):
    from apps.datasets.models import Dataset

    manuals = Dataset.objects.create(
        workspace=ready.workspace, name="Manuals", permission="all_team_members"
    )
    app = make_app(ready)
    client = ready.client(Role.EDITOR)
    url = reverse("app_configure", args=[app.id])
    settings = {
        "datasets": str(manuals.id),
        "retrieval_mode": "single",
        "top_k": "6",
        "score_threshold_enabled": "true",
        "score_threshold": "0.4",
    }
    assert client.post(url, config_post(**settings)).status_code == 302
    app.refresh_from_db()
    knowledge = app.config["dataset_configs"]
    assert knowledge["retrieval_model"] == "single" and knowledge["top_k"] == 6
    assert knowledge["score_threshold_enabled"] and knowledge["score_threshold"] == 0.4
    page = client.get(url).content.decode()
    assert 'name="top_k" min="1" max="100" value="6"' in page
    for bad in ({"top_k": "0"}, {"score_threshold": "3"}, {"reranking_enable": "true"}):
        response = client.post(url, config_post(**{**settings, **bad}))
        assert response.status_code == 400, bad


def test_the_knowledge_slot_offers_what_the_editor_may_see(ready):
    from apps.datasets.models import Dataset

    private = Dataset.objects.create(
        workspace=ready.workspace, name="Owner's notes", created_by=ready.owner
    )
    own = Dataset.objects.create(
        workspace=ready.workspace, name="My drafts", created_by=ready.members[Role.EDITOR].user
    )
    app = make_app(ready)
    client = ready.client(Role.EDITOR)
    url = reverse("app_configure", args=[app.id])
    page = client.get(url).content.decode()
    assert "My drafts" in page and "Owner&#x27;s notes" not in page
    assert client.post(url, config_post(datasets=str(private.id))).status_code == 400
    # Attached by the owner, it stays through the editor's save.
    owner = ready.client(Role.OWNER)
    assert owner.post(url, config_post(datasets=[str(private.id)])).status_code == 302
    assert "Owner&#x27;s notes" in client.get(url).content.decode()
    saved = client.post(url, config_post(datasets=[str(private.id), str(own.id)]))
    assert saved.status_code == 302
