"""The configuration page's "Fallback models" list: an editor adds, reorders and removes
models with its buttons (an htmx swap of the list, or the whole page without JavaScript),
and saves them with the configuration; a bad list is a form error and saves nothing;
members who may not edit the app cannot change it."""

import re
from html import unescape

import pytest
from django.urls import reverse

from apps.tenants.models import Role
from tests.chat.test_studio import config_post, make_app

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
EMPTY = "No fallback models: if the model fails, the answer fails."


def listed(html: str) -> list[str]:
    """The fallback list as the page draws it, in order."""
    return [m[1] for m in re.finditer(r'name="fallback-\d+" value="([^"]+)"', html)]


def chain_fields(*values: str) -> dict:
    return {f"fallback-{index}": value for index, value in enumerate(values)}


def press(client, app, action: str, *chain: str, new: str = "", htmx: bool = True):
    """Press one of the list's buttons with the page as it stands."""
    data = config_post(**chain_fields(*chain), fallback_action=action, fallback_new=new)
    return client.post(reverse("app_configure", args=[app.id]), data, **(HTMX if htmx else {}))


def test_a_new_app_has_no_fallback_models_and_says_what_that_means(ready):
    app = make_app(ready)
    page = ready.client(Role.EDITOR).get(reverse("app_configure", args=[app.id])).content
    page = page.decode()
    assert "Fallback models" in page and EMPTY in page
    assert listed(page) == []
    assert 'value="openai/gpt-4o"' in page.split('id="config-fallback-new"')[1]


def test_an_editor_adds_reorders_removes_and_saves_the_chain(ready):
    app = make_app(ready)
    before = app.config
    client = ready.client(Role.EDITOR)

    added = press(client, app, "add", new="openai/gpt-4o")
    assert added.status_code == 200
    assert added.content.decode().startswith("<fieldset")  # just the list, for the swap
    assert listed(added.content.decode()) == ["openai/gpt-4o"]
    added = press(client, app, "add", "openai/gpt-4o", new="openai/gpt-4.1")
    assert listed(added.content.decode()) == ["openai/gpt-4o", "openai/gpt-4.1"]
    moved = press(client, app, "up-1", "openai/gpt-4o", "openai/gpt-4.1")
    assert listed(moved.content.decode()) == ["openai/gpt-4.1", "openai/gpt-4o"]
    moved = press(client, app, "down-0", "openai/gpt-4.1", "openai/gpt-4o")
    assert listed(moved.content.decode()) == ["openai/gpt-4o", "openai/gpt-4.1"]
    app.refresh_from_db()
    assert app.config == before  # the buttons save nothing

    saved = client.post(
        reverse("app_configure", args=[app.id]),
        config_post(**chain_fields("openai/gpt-4.1", "openai/gpt-4o")),
    )
    assert saved.status_code == 302, unescape(saved.content.decode())[:500]
    app.refresh_from_db()
    assert app.config["model"]["fallbacks"] == [
        {"provider": "openai", "name": "gpt-4.1"},
        {"provider": "openai", "name": "gpt-4o"},
    ]
    page = client.get(reverse("app_configure", args=[app.id])).content.decode()
    assert listed(page) == ["openai/gpt-4.1", "openai/gpt-4o"]
    assert EMPTY not in page

    removed = press(client, app, "remove-0", "openai/gpt-4.1", "openai/gpt-4o")
    assert listed(removed.content.decode()) == ["openai/gpt-4o"]
    emptied = press(client, app, "remove-0", "openai/gpt-4o")
    assert listed(emptied.content.decode()) == [] and EMPTY in emptied.content.decode()
    client.post(reverse("app_configure", args=[app.id]), config_post())
    app.refresh_from_db()
    assert app.config["model"]["fallbacks"] == []


def test_without_javascript_a_button_redraws_the_whole_page(ready):
    app = make_app(ready)
    response = press(ready.client(Role.EDITOR), app, "add", new="openai/gpt-4o", htmx=False)
    page = response.content.decode()
    assert response.status_code == 200
    assert "Save configuration" in page and listed(page) == ["openai/gpt-4o"]
    assert "Hello! What can I do?" in page  # what was typed elsewhere stays


def test_a_full_list_offers_no_more_models(ready):
    app = make_app(ready)
    three = ("openai/gpt-4o", "openai/gpt-4.1", "openai/o3")
    page = press(ready.client(Role.EDITOR), app, "up-1", *three).content.decode()
    assert "at most 3 fallback models" in page and 'name="fallback_new"' not in page


@pytest.mark.parametrize(
    ("chain", "error"),
    [
        (["openai/no-such-model"], "openai/no-such-model is not a language model this workspace"),
        (["anthropic/claude-3-5-haiku-20241022"], "is not a language model this workspace can"),
        (["openai/gpt-4o", "openai/gpt-4o"], "openai/gpt-4o is in the fallback list twice."),
        (["openai/gpt-4o-mini"], "openai/gpt-4o-mini is the app's model already"),
        (["openai/gpt-4o", "openai/gpt-4.1", "openai/o3", "openai/gpt-5"], "at most 3 fallback"),
    ],
    ids=["unknown-model", "provider-not-set-up", "twice", "the-main-model", "too-many"],
)
def test_a_bad_chain_is_a_form_error_and_nothing_is_saved(ready, chain, error):
    app = make_app(ready)
    before = app.config
    response = ready.client(Role.EDITOR).post(
        reverse("app_configure", args=[app.id]), config_post(**chain_fields(*chain))
    )
    page = unescape(response.content.decode())
    assert response.status_code == 400
    assert error in page and "The configuration was not saved" in page
    assert listed(page) == chain  # shown as sent, to fix
    app.refresh_from_db()
    assert app.config == before


@pytest.mark.parametrize(
    ("chain", "new", "error"),
    [
        (["openai/gpt-4o"], "openai/gpt-4o", "in the fallback list twice"),
        ([], "openai/gpt-4o-mini", "is the app's model already"),
        ([], "", "Choose a model to add."),
    ],
    ids=["twice", "the-main-model", "nothing-chosen"],
)
def test_a_refused_add_keeps_the_list_and_says_why(ready, chain, new, error):
    app = make_app(ready)
    response = press(ready.client(Role.EDITOR), app, "add", *chain, new=new)
    assert response.status_code == 400
    assert error in unescape(response.content.decode())
    assert listed(response.content.decode()) == chain


def test_an_unavailable_fallback_is_marked_and_must_go_before_saving(ready):
    app = make_app(ready)
    gone = {"provider": "anthropic", "name": "claude-3-5-haiku-20241022"}
    app.config["model"]["fallbacks"] = [gone]  # imported, say, before Anthropic was set up
    app.save()
    client = ready.client(Role.EDITOR)
    page = client.get(reverse("app_configure", args=[app.id])).content.decode()
    assert "anthropic/claude-3-5-haiku-20241022" in page
    assert "not available in this workspace" in page
    kept = client.post(
        reverse("app_configure", args=[app.id]), config_post(**chain_fields(listed(page)[0]))
    )
    assert kept.status_code == 400
    removed = client.post(reverse("app_configure", args=[app.id]), config_post())
    assert removed.status_code == 302


@pytest.mark.parametrize("role", [Role.NORMAL, Role.DATASET_OPERATOR])
def test_members_who_may_not_edit_the_app_cannot_change_its_chain(ready, role):
    app = make_app(ready)
    before = app.config
    client = ready.client(role)
    assert press(client, app, "add", new="openai/gpt-4o").status_code == 403
    saved = client.post(
        reverse("app_configure", args=[app.id]), config_post(**chain_fields("openai/gpt-4o"))
    )
    assert saved.status_code == 403
    app.refresh_from_db()
    assert app.config == before
