import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from apps.providers import services
from apps.providers.instance import ModelInstance
from apps.providers.runtime.types import LLMRequest, Message
from apps.tenants.models import Role
from apps.tenants.services import api_key_create
from tests.fakes.ollama import FakeOllama

pytestmark = pytest.mark.django_db(transaction=True)  # model calls read from worker threads


@pytest.fixture
def ollama(team):
    with FakeOllama() as fake:
        services.provider_credentials_save(
            actor=team.members[Role.OWNER], provider="ollama", credentials={"base_url": fake.url}
        )
        yield fake


def test_the_server_lists_its_models_and_any_of_them_can_be_called(team, ollama):
    _, key = api_key_create(actor=team.members[Role.OWNER], name="ops")
    client = Client(headers={"Authorization": f"Bearer {key}"})
    listed = client.get("/api/providers/ollama/remote-models")
    assert listed.status_code == 200
    names = [m["model"] for m in listed.json()]
    assert names and set(names) <= set(ollama.models)

    chat_model = next(m["model"] for m in listed.json() if m["model_type"] == "llm")
    instance = ModelInstance(workspace=team.workspace, provider="ollama", model=chat_model)
    request = LLMRequest(model="", messages=[Message("user", "hello")])
    assert async_to_sync(instance.invoke_llm)(request).text


def test_providers_that_cannot_list_answer_an_empty_list(team):
    _, key = api_key_create(actor=team.members[Role.OWNER], name="ops")
    client = Client(headers={"Authorization": f"Bearer {key}"})
    assert client.get("/api/providers/anthropic/remote-models").json() == []


def test_the_provider_page_lists_the_server_models(team, ollama):
    page = team.client().get("/settings/providers/ollama/")
    assert "Models on the server" in page.content.decode()
    listed = team.client().get("/settings/providers/ollama/remote-models/").content.decode()
    assert "llama3.2:latest" in listed
