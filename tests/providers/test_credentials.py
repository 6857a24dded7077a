import pytest
from django.db import connection

from apps.core.errors import DomainError, PermissionDenied
from apps.providers import selectors, services
from apps.providers.credentials import CredentialsInvalid
from apps.providers.models import ProviderConfig
from apps.tenants.models import Role
from tests.fakes.openai import openai_error
from tests.providers.conftest import FAKE_KEY

pytestmark = pytest.mark.django_db


def test_saving_credentials_proves_them_with_a_real_call(openai_ready, fake_openai):
    assert fake_openai.requests[-1].path == "/v1/models"
    assert fake_openai.requests[-1].headers["authorization"] == f"Bearer {FAKE_KEY}"
    status = selectors.provider_status(workspace=openai_ready.workspace, provider="openai")
    assert status.configured and status.usable


def test_the_stored_key_is_encrypted_and_never_shown_whole(openai_ready):
    with connection.cursor() as cursor:
        cursor.execute("SELECT encrypted_credentials FROM providers_providerconfig")
        (raw,) = cursor.fetchone()
    assert FAKE_KEY not in raw and raw.startswith("enc1:")
    shown = selectors.provider_credentials_masked(
        workspace=openai_ready.workspace, provider="openai"
    )
    assert shown["openai_api_key"] != FAKE_KEY
    assert shown["openai_api_key"].startswith("sk-fa") and "…" in shown["openai_api_key"]


def test_a_refused_key_is_not_saved_and_the_provider_says_why(team, fake_openai):
    with pytest.raises(CredentialsInvalid) as refused:
        services.provider_credentials_save(
            actor=team.members[Role.ADMIN],
            provider="openai",
            credentials={"openai_api_key": "sk-wrong", "openai_api_base": fake_openai.url},
        )
    assert "Incorrect API key" in refused.value.message
    assert not ProviderConfig.objects.exists()


def test_an_unreachable_server_is_a_clear_error(team):
    with pytest.raises(CredentialsInvalid) as refused:
        services.provider_credentials_save(
            actor=team.members[Role.ADMIN],
            provider="openai",
            credentials={"openai_api_key": "sk-x", "openai_api_base": "http://127.0.0.1:9"},
        )
    assert "OpenAI refused these credentials" in refused.value.message


def test_an_unchanged_secret_keeps_its_stored_value(openai_ready, fake_openai):
    masked = selectors.provider_credentials_masked(
        workspace=openai_ready.workspace, provider="openai"
    )
    services.provider_credentials_save(
        actor=openai_ready.members[Role.OWNER],
        provider="openai",
        credentials={**masked, "openai_organization": "org-42"},
    )
    assert fake_openai.requests[-1].headers["authorization"] == f"Bearer {FAKE_KEY}"
    assert fake_openai.requests[-1].headers["openai-organization"] == "org-42"


def test_a_stored_key_is_never_sent_to_a_new_address_without_retyping_it(openai_ready):
    with pytest.raises(CredentialsInvalid) as refused:
        services.provider_credentials_save(
            actor=openai_ready.members[Role.OWNER],
            provider="openai",
            credentials={"openai_api_key": "[__HIDDEN__]", "openai_api_base": "http://evil.test"},
        )
    assert "entered again" in refused.value.message


@pytest.mark.parametrize("role", [Role.EDITOR, Role.NORMAL, Role.DATASET_OPERATOR], ids=str)
def test_only_owners_and_admins_set_credentials(team, role, fake_openai):
    with pytest.raises(PermissionDenied):
        services.provider_credentials_save(
            actor=team.members[role],
            provider="openai",
            credentials={"openai_api_key": FAKE_KEY, "openai_api_base": fake_openai.url},
        )


def test_the_provider_error_body_is_kept_when_validation_fails(team, fake_openai):
    fake_openai.queue(openai_error(429, "You exceeded your current quota"))
    with pytest.raises(CredentialsInvalid) as refused:
        services.provider_credentials_save(
            actor=team.members[Role.OWNER],
            provider="openai",
            credentials={"openai_api_key": FAKE_KEY, "openai_api_base": fake_openai.url},
        )
    assert "exceeded your current quota" in refused.value.message


def test_a_private_address_is_refused_when_the_operator_forbids_it(team, fake_openai, settings):
    settings.ORRERY_ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(DomainError) as refused:
        services.provider_credentials_save(
            actor=team.members[Role.OWNER],
            provider="openai",
            credentials={"openai_api_key": FAKE_KEY, "openai_api_base": fake_openai.url},
        )
    assert "127.0.0.1" in refused.value.message
    assert "ORRERY_ALLOW_PRIVATE_NETWORKS" in refused.value.message
    assert fake_openai.requests == []
    assert not ProviderConfig.objects.exists()
