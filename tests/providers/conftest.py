"""Fixtures for the model runtime: fake providers on real ports, and a workspace whose
OpenAI credentials point at the fake."""

import pytest

from apps.providers import services
from apps.tenants.models import Role
from tests.fakes.openai import FakeOpenAI

FAKE_KEY = "sk-fake-key"


@pytest.fixture
def fake_openai():
    with FakeOpenAI(api_key=FAKE_KEY) as fake:
        yield fake


@pytest.fixture
def openai_ready(team, fake_openai):
    """`team`'s workspace with OpenAI set up against the fake (validated for real)."""
    services.provider_credentials_save(
        actor=team.members[Role.OWNER],
        provider="openai",
        credentials={"openai_api_key": FAKE_KEY, "openai_api_base": fake_openai.url},
    )
    return team
