"""Settings → Model providers, as people in each role see and use it."""

import re

import pytest
from django.urls import reverse

from apps.providers import catalog, selectors, services
from apps.providers.models import CredentialSet, DefaultModel, ModelConfig, ProviderConfig
from apps.tenants.models import Role
from tests.providers.conftest import FAKE_KEY

pytestmark = pytest.mark.django_db

DETAIL = "provider_detail"
COMPATIBLE = "openai_api_compatible"


def _page(response) -> str:
    return response.content.decode()


def _masked_key(team) -> str:
    shown = selectors.provider_credentials_masked(workspace=team.workspace, provider="openai")
    return shown["openai_api_key"]


def _model_row(html: str, model: str) -> str:
    """The <tr> of one model in the models table."""
    match = re.search(rf'<tr [^>]*data-model="{re.escape(model)}">.*?</tr>', html, re.S)
    assert match, f"no row for {model}"
    return match.group(0)


def _compatible_model(fake, **overrides) -> dict:
    return {
        "model_type": "llm",
        "model": "gpt-4o-mini",
        "cred-endpoint_url": fake.url + "/v1",
        "cred-api_key": FAKE_KEY,
        "cred-mode": "chat",
        "cred-context_size": "8192",
        **overrides,
    }


# --- The list ------------------------------------------------------------------------


def test_every_member_sees_the_catalog_with_each_providers_status(team):
    page = _page(team.client(Role.NORMAL).get(reverse("providers")))
    cards = re.findall(r'data-testid="provider-([a-z0-9_]+)"', page)
    assert len(cards) >= 30
    assert {"openai", "anthropic", "ollama", COMPATIBLE} <= set(cards)
    assert page.count("Not set up") == len(cards)
    assert "Model providers" in page and "Default models" in page
    assert 'name="llm"' not in page  # the defaults are read-only for members


def test_set_up_providers_come_first_marked_configured(openai_ready):
    page = _page(openai_ready.client(Role.EDITOR).get(reverse("providers")))
    set_up, _, rest = page.partition('data-testid="providers-available"')
    assert 'data-testid="provider-openai"' in set_up
    assert 'data-testid="provider-openai"' not in rest
    openai_card = re.search(r'data-testid="provider-openai".*?</a>', set_up, re.S).group(0)
    assert "Configured" in openai_card
    assert "LLM" in openai_card and "Text to speech" in openai_card


def test_operator_keys_show_as_such(team, settings):
    settings.ORRERY_SYSTEM_CREDENTIALS = '{"anthropic": {"anthropic_api_key": "sk-ant-op"}}'
    page = _page(team.client().get(reverse("providers")))
    card = re.search(r'data-testid="provider-anthropic".*?</a>', page, re.S).group(0)
    assert "Operator keys" in card
    assert "sk-ant-op" not in page


def test_provider_icons_are_served_from_the_catalog_and_cached(team):
    client = team.client(Role.NORMAL)
    response = client.get(reverse("provider_icon", args=["openai"]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert "max-age=604800" in response["Cache-Control"]
    assert b"<svg" in response.content
    assert client.get("/settings/providers/nobody/icon.svg").status_code == 404
    assert client.get("/settings/providers/..%2F..%2Fsettings/icon.svg").status_code == 404


def test_every_providers_page_draws_the_forms_its_schemas_describe(team):
    client = team.client(Role.ADMIN)
    for spec in catalog.providers():
        response = client.get(reverse(DETAIL, args=[spec.provider]))
        assert response.status_code == 200, spec.provider
        page = _page(response)
        has_provider_form = 'data-testid="credentials-form"' in page
        assert has_provider_form == bool(spec.provider_credential_schema), spec.provider
        takes_custom = "customizable-model" in spec.configurate_methods
        assert ('data-testid="custom-model-form"' in page) == takes_custom, spec.provider
        for item in spec.credential_fields() + spec.credential_fields(for_model=True):
            assert f'name="cred-{item.variable}"' in page, (spec.provider, item.variable)
    ollama = _page(client.get(reverse(DETAIL, args=["ollama"])))
    assert 'type="checkbox"' in ollama  # switches


def test_the_settings_menu_leads_to_model_providers(team):
    page = _page(team.client(Role.DATASET_OPERATOR).get(reverse("settings")))
    assert f'href="{reverse("providers")}"' in page and "Model providers" in page


# --- Credentials ---------------------------------------------------------------------


def test_an_admin_sets_up_openai_and_sees_it_configured(team, fake_openai):
    client = team.client(Role.ADMIN)
    form_page = _page(client.get(reverse(DETAIL, args=["openai"])))
    assert 'data-testid="credentials-form"' in form_page
    assert "Create an API key on the OpenAI platform" in form_page  # the help link
    assert 'type="password"' in form_page and "Not set up" in form_page

    response = client.post(
        reverse(DETAIL, args=["openai"]),
        {"cred-openai_api_key": FAKE_KEY, "cred-openai_api_base": fake_openai.url},
        follow=True,
    )
    page = _page(response)
    assert response.redirect_chain[-1][0] == reverse(DETAIL, args=["openai"])
    assert "OpenAI is set up: the credentials work." in page
    assert re.search(r'data-testid="provider-status">Configured<', page)
    assert "GPT-4o mini" in _model_row(page, "gpt-4o-mini")
    assert fake_openai.requests[-1].path == "/v1/models"  # proven with a real call
    assert FAKE_KEY not in page
    assert f"{_masked_key(team)} — leave empty to keep" in page  # a placeholder only
    assert f'value="{fake_openai.url}"' in page  # plain fields show what is stored


def test_a_refused_key_shows_the_providers_words_and_saves_nothing(team, fake_openai):
    response = team.client(Role.ADMIN).post(
        reverse(DETAIL, args=["openai"]),
        {
            "cred-openai_api_key": "sk-wrong-key-123456",
            "cred-openai_api_base": fake_openai.url,
            "cred-openai_organization": "org-typed",
        },
    )
    page = _page(response)
    assert response.status_code == 400
    assert "OpenAI refused these credentials: Incorrect API key provided" in page
    assert 'value="org-typed"' in page and f'value="{fake_openai.url}"' in page  # kept
    assert "sk-wrong-key-123456" not in page  # but never a secret
    assert not ProviderConfig.objects.exists()


def test_a_missing_required_key_is_shown_next_to_the_field(team):
    response = team.client(Role.OWNER).post(reverse(DETAIL, args=["openai"]), {})
    assert response.status_code == 400
    assert re.search(r'class="field has-error".*?API Key is required\.', _page(response), re.S)


def test_an_empty_secret_keeps_the_stored_key(openai_ready, fake_openai):
    response = openai_ready.client(Role.ADMIN).post(
        reverse(DETAIL, args=["openai"]),
        {
            "cred-openai_api_key": "",
            "cred-openai_api_base": fake_openai.url,
            "cred-openai_organization": "org-42",
        },
    )
    assert response.status_code == 302
    assert fake_openai.requests[-1].headers["authorization"] == f"Bearer {FAKE_KEY}"
    assert fake_openai.requests[-1].headers["openai-organization"] == "org-42"


def test_a_new_address_needs_the_key_typed_again(openai_ready):
    response = openai_ready.client(Role.ADMIN).post(
        reverse(DETAIL, args=["openai"]),
        {"cred-openai_api_key": "", "cred-openai_api_base": "http://elsewhere.test"},
    )
    assert response.status_code == 400
    assert "API Key must be entered again when the address changes." in _page(response)


@pytest.mark.parametrize("role", [Role.EDITOR, Role.NORMAL, Role.DATASET_OPERATOR], ids=str)
def test_other_members_see_the_status_but_nothing_of_the_credentials(openai_ready, role):
    client = openai_ready.client(role)
    masked = _masked_key(openai_ready)
    page = _page(client.get(reverse(DETAIL, args=["openai"])))
    assert re.search(r'data-testid="provider-status">Configured<', page)
    assert "GPT-4o mini" in page
    assert 'data-testid="credentials-form"' not in page
    assert "<form" not in page.split('id="models"')[1]  # the models table is read-only
    assert masked not in page and FAKE_KEY not in page and FAKE_KEY[:5] not in page
    assert "openai_api_base" not in page
    refused = client.post(reverse(DETAIL, args=["openai"]), {"cred-openai_api_key": "sk-x"})
    assert refused.status_code == 403


def test_disable_enable_and_remove_the_provider(openai_ready):
    client = openai_ready.client(Role.ADMIN)
    url = reverse(DETAIL, args=["openai"])
    client.post(reverse("provider_enabled", args=["openai"]), {"enabled": "false"})
    assert re.search(r'data-testid="provider-status">Disabled<', _page(client.get(url)))
    assert "Enable provider" in _page(client.get(url))
    client.post(reverse("provider_enabled", args=["openai"]), {"enabled": "true"})
    assert re.search(r'data-testid="provider-status">Configured<', _page(client.get(url)))

    page = _page(client.get(url))
    assert 'data-confirm="Remove the credentials of OpenAI?' in page
    response = client.post(reverse("provider_remove", args=["openai"]), follow=True)
    assert "OpenAI&#x27;s credentials were removed." in _page(response)
    assert re.search(r'data-testid="provider-status">Not set up<', _page(response))
    assert not ProviderConfig.objects.exists()


# --- Custom models -------------------------------------------------------------------


def test_a_custom_model_on_an_openai_compatible_server_is_checked_added_and_deleted(
    team, fake_openai
):
    client = team.client(Role.ADMIN)
    url = reverse(DETAIL, args=[COMPATIBLE])
    form = _page(client.get(url))
    assert 'data-variable="__model_type"' in form  # show_on by model type works
    assert re.search(r'data-show-on="\[\{&quot;variable&quot;: &quot;__model_type', form)

    response = client.post(reverse("model_save", args=[COMPATIBLE]), _compatible_model(fake_openai))
    assert response.status_code == 302
    assert fake_openai.requests[-1].path == "/v1/chat/completions"  # validated for real
    page = _page(client.get(url))
    row = _model_row(page, "gpt-4o-mini")
    assert "Custom" in row and "Enabled" in row and "Edit credentials" in row
    assert FAKE_KEY not in page
    assert re.search(r'data-testid="provider-status">Configured<', page)

    response = client.post(
        reverse("model_delete", args=[COMPATIBLE]), {"model_type": "llm", "model": "gpt-4o-mini"}
    )
    assert response.status_code == 302
    assert 'data-model="gpt-4o-mini"' not in _page(client.get(url))
    assert not ModelConfig.objects.exists()


def test_a_custom_model_the_server_does_not_know_is_refused_with_its_words(team, fake_openai):
    response = team.client(Role.ADMIN).post(
        reverse("model_save", args=[COMPATIBLE]),
        _compatible_model(fake_openai, model="no-such-model"),
    )
    page = _page(response)
    assert response.status_code == 400
    assert "refused these credentials" in page and "no-such-model" in page
    assert f'value="{fake_openai.url}/v1"' in page  # what was typed is kept
    assert not ModelConfig.objects.exists()


def test_editing_a_custom_model_keeps_its_key_when_left_empty(team, fake_openai):
    client = team.client(Role.ADMIN)
    client.post(reverse("model_save", args=[COMPATIBLE]), _compatible_model(fake_openai))
    page = _page(client.get(reverse(DETAIL, args=[COMPATIBLE])))
    assert "sk-fa…ey — leave empty to keep" in page and FAKE_KEY not in page

    response = client.post(
        reverse("model_save", args=[COMPATIBLE]),
        _compatible_model(fake_openai, **{"cred-api_key": "", "edit": "1"}),
    )
    assert response.status_code == 302
    assert fake_openai.requests[-1].headers["authorization"] == f"Bearer {FAKE_KEY}"


# --- Model settings and load balancing -----------------------------------------------


def test_an_admin_disables_a_model_in_place_and_sees_it_disabled(openai_ready):
    client = openai_ready.client(Role.ADMIN)
    key = {"model_type": "llm", "model": "gpt-4o"}
    row = client.post(
        reverse("model_update", args=["openai"]),
        {**key, "enabled": "false"},
        HTTP_HX_REQUEST="true",
    )
    assert row.status_code == 200
    html = _page(row)
    assert html.lstrip().startswith("<tr") and "Disabled" in html and "Enable" in html
    page = _page(client.get(reverse(DETAIL, args=["openai"])))
    assert "Disabled" in _model_row(page, "gpt-4o")
    assert "Enabled" in _model_row(page, "gpt-4o-mini")
    usable = selectors.usable_models(workspace=openai_ready.workspace, model_type="llm")
    assert "gpt-4o" not in {r.model for r in usable}

    response = client.post(reverse("model_update", args=["openai"]), {**key, "enabled": "true"})
    assert response.status_code == 302  # without HTMX: back to the page
    assert "Enabled" in _model_row(_page(client.get(response["Location"])), "gpt-4o")


def test_a_tampered_htmx_switch_reloads_the_page_with_the_reason(openai_ready):
    client = openai_ready.client(Role.ADMIN)
    response = client.post(
        reverse("model_update", args=["openai"]),
        {"model_type": "poetry", "model": "gpt-4o", "enabled": "false"},
        HTTP_HX_REQUEST="true",
    )
    assert response["HX-Refresh"] == "true"
    page = _page(client.get(reverse(DETAIL, args=["openai"])))
    assert "Model type: Select a valid choice." in page


def test_a_credential_set_is_added_and_deleted(openai_ready, fake_openai):
    client = openai_ready.client(Role.ADMIN)
    key = {"model_type": "llm", "model": "gpt-4o-mini"}
    response = client.post(reverse("credential_set_add", args=["openai"]), {**key, "name": "reuse"})
    assert response.status_code == 302
    response = client.post(
        reverse("credential_set_add", args=["openai"]),
        {
            **key,
            "name": "second key",
            "cred-openai_api_key": FAKE_KEY,
            "cred-openai_api_base": fake_openai.url,
        },
    )
    assert response.status_code == 302
    assert fake_openai.requests[-1].path == "/v1/chat/completions"  # checked for real
    row = _model_row(_page(client.get(reverse(DETAIL, args=["openai"]))), "gpt-4o-mini")
    assert "Round robin" in row and "reuse" in row and "second key" in row

    client.post(reverse("model_update", args=["openai"]), {**key, "load_balancing": "least_busy"})
    row = _model_row(_page(client.get(reverse(DETAIL, args=["openai"]))), "gpt-4o-mini")
    assert "Least busy" in row

    reused = CredentialSet.objects.get(name="reuse")
    response = client.post(reverse("credential_set_delete", args=["openai", reused.id]))
    assert response.status_code == 302
    row = _model_row(_page(client.get(reverse(DETAIL, args=["openai"]))), "gpt-4o-mini")
    assert "reuse" not in row and "second key" in row


def test_a_refused_credential_set_shows_why_in_its_row(openai_ready, fake_openai):
    response = openai_ready.client(Role.ADMIN).post(
        reverse("credential_set_add", args=["openai"]),
        {
            "model_type": "llm",
            "model": "gpt-4o-mini",
            "name": "broken",
            "cred-openai_api_key": "sk-not-the-key-999",
            "cred-openai_api_base": fake_openai.url,
        },
    )
    assert response.status_code == 400
    row = _model_row(_page(response), "gpt-4o-mini")
    assert "Incorrect API key provided" in row and '<details class="disclosure" open>' in row
    assert 'value="broken"' in row and "sk-not-the-key-999" not in row
    assert not CredentialSet.objects.exists()


# --- Default models ------------------------------------------------------------------


def test_an_admin_sets_the_default_reasoning_model_and_members_see_it(openai_ready):
    admin = openai_ready.client(Role.ADMIN)
    page = _page(admin.get(reverse("providers")))
    assert '<option value="openai/gpt-4o-mini">GPT-4o mini</option>' in page
    response = admin.post(reverse("providers"), {"llm": "openai/gpt-4o-mini"}, follow=True)
    assert "Default models saved." in _page(response)
    assert '<option value="openai/gpt-4o-mini" selected>' in _page(response)
    default = DefaultModel.objects.get(workspace=openai_ready.workspace, model_type="llm")
    assert (default.provider, default.model) == ("openai", "gpt-4o-mini")

    member = openai_ready.client(Role.NORMAL)
    assert "OpenAI · gpt-4o-mini" in _page(member.get(reverse("providers")))
    assert member.post(reverse("providers"), {"llm": "openai/gpt-4o"}).status_code == 403


def test_a_default_must_be_one_of_the_usable_models(openai_ready):
    response = openai_ready.client().post(
        reverse("providers"), {"llm": "anthropic/claude-sonnet", "rerank": "openai/gpt-4o"}
    )
    assert response.status_code == 400
    assert _page(response).count("Choose one of the models in the list.") == 2
    assert not DefaultModel.objects.exists()


# --- Bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, url",
    [
        ("get", "/settings/providers/nobody/"),
        ("post", "/settings/providers/nobody/"),
        ("post", "/settings/providers/nobody/enabled/"),
        ("post", "/settings/providers/nobody/models/save/"),
        ("post", "/settings/providers/nobody/credential-sets/add/"),
        ("get", "/settings/providers/OpenAI/"),
    ],
    ids=["detail", "save", "enable", "custom-model", "credential-set", "wrong-case"],
)
def test_an_unknown_provider_is_not_found(team, method, url):
    assert getattr(team.client(), method)(url).status_code == 404


@pytest.mark.parametrize(
    "url_name, provider, data, message",
    [
        ("model_save", COMPATIBLE, {"model_type": "poetry", "model": "m"}, "valid choice"),
        ("model_save", "openai", {"model_type": "rerank", "model": "m"}, "has no"),
        ("model_save", COMPATIBLE, {"model_type": "llm", "model": "x" * 300}, "at most 255"),
        ("model_save", "gemini", {"model_type": "llm", "model": "m"}, "custom models"),
        ("model_update", "openai", {"model_type": "poetry", "model": "gpt-4o"}, "valid choice"),
        (
            "model_update",
            "openai",
            {"model_type": "llm", "model": "gpt-4o", "load_balancing": "chaos"},
            "valid choice",
        ),
        (
            "credential_set_add",
            "openai",
            {"model_type": "llm", "model": "gpt-4o", "name": "n" * 101},
            "at most 100",
        ),
        (
            "credential_set_add",
            "openai",
            {"model_type": "llm", "model": "not-in-the-table", "name": "n"},
            "Choose a model from the table.",
        ),
        ("provider_enabled", "openai", {"enabled": "perhaps"}, "enable or disable"),
        ("provider_detail", COMPATIBLE, {"cred-api_key": "x"}, "per model"),
    ],
    ids=[
        "unknown-type",
        "unsupported-type",
        "overlong-model",
        "not-customizable",
        "update-unknown-type",
        "unknown-strategy",
        "overlong-set-name",
        "unknown-model",
        "enabled-garbage",
        "no-provider-form",
    ],
)
def test_bad_input_is_a_4xx_with_a_message(team, url_name, provider, data, message):
    response = team.client(Role.ADMIN).post(reverse(url_name, args=[provider]), data)
    assert 400 <= response.status_code < 500
    assert message in _page(response)


@pytest.mark.parametrize(
    "credentials",
    [
        {"cred-openai_api_key": "sk-\x00nul"},
        {"cred-openai_api_key": "sk-line\r\nX-Evil: 1"},
        {"cred-openai_api_key": "k" * 100_000},
        {"cred-openai_api_key": ["a", "b"], "cred-openai_api_base": ["x", "y"]},
        {"cred-openai_api_key": "sk-x", "cred-openai_api_base": "javascript:alert(1)"},
        {"cred-openai_api_key": "sk-x", "cred-openai_api_base": "http://169.254.169.254/"},
        {"cred-unknown_field": "x", "cred-openai_api_key": "sk-x", "cred-openai_api_base": "::"},
    ],
    ids=["nul", "header-injection", "huge", "lists", "js-url", "metadata", "unknown-field"],
)
def test_garbage_credentials_are_refused_without_a_crash(team, fake_openai, credentials):
    data = {"cred-openai_api_base": fake_openai.url, **credentials}  # never the internet
    response = team.client(Role.ADMIN).post(reverse(DETAIL, args=["openai"]), data)
    assert response.status_code == 400
    page = _page(response)
    assert 'class="form-errors"' in page or "has-error" in page
    typed = credentials["cred-openai_api_key"]
    if isinstance(typed, str):  # some errors quote the request; never the secret in it
        assert typed not in page and repr(typed)[1:-1] not in page
    assert not ProviderConfig.objects.exists()


def test_a_foreign_or_missing_credential_set_is_not_found(openai_ready, other_team):
    created = services.credential_set_add(
        actor=other_team.members[Role.OWNER],
        provider="openai",
        model_type="llm",
        model="gpt-4o-mini",
        name="theirs",
        credentials={},
        validate=False,
    )
    response = openai_ready.client().post(
        reverse("credential_set_delete", args=["openai", created.id])
    )
    assert response.status_code == 404
    assert CredentialSet.objects.filter(pk=created.pk).exists()
