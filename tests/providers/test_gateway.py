"""The OpenAI-compatible gateway, driven by the official openai client over real HTTP
against the real server, relaying to a fake OpenAI upstream."""

import openai
import pytest
from django.test import Client

from apps.providers.models import UsageRecord
from apps.tenants.models import ApiKeyScope, Role
from apps.tenants.services import api_key_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def gateway(openai_ready, live_server_url):
    _, key = api_key_create(
        actor=openai_ready.members[Role.OWNER], name="sdk", scope=ApiKeyScope.GATEWAY
    )
    return openai.OpenAI(base_url=f"{live_server_url}/v1", api_key=key, max_retries=0)


def test_chat_completion_with_the_official_client(gateway):
    reply = gateway.chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi gateway"}]
    )
    assert reply.choices[0].message.content == "You said: hi gateway"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.model == "openai/gpt-4o-mini"
    record = UsageRecord.objects.get(source="gateway")
    assert record.output_tokens == reply.usage.completion_tokens


def test_streaming_with_usage_in_the_last_chunk(gateway):
    chunks = list(
        gateway.chat.completions.create(
            model="openai/gpt-4o-mini",
            messages=[{"role": "user", "content": "stream it"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: stream it"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_tool_calls_pass_through(gateway):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    reply = gateway.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "what is the weather in Paris"}],
        tools=tools,
    )
    call = reply.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert reply.choices[0].finish_reason == "tool_calls"


def test_embeddings_and_model_list(gateway):
    result = gateway.embeddings.create(
        model="openai/text-embedding-3-small", input=["one", "two", "three"]
    )
    assert [d.index for d in result.data] == [0, 1, 2]
    assert len(result.data[0].embedding) == 8  # the fake's dimension
    ids = {m.id for m in gateway.models.list()}
    assert {"openai/gpt-4o-mini", "openai/text-embedding-3-small"} <= ids


def test_errors_reach_the_client_as_openai_errors(gateway, live_server_url):
    with pytest.raises(openai.NotFoundError):
        gateway.chat.completions.create(
            model="openai/no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.BadRequestError):
        gateway.chat.completions.create(model="gpt-4o-mini", messages=[])
    stranger = openai.OpenAI(base_url=f"{live_server_url}/v1", api_key="orr-nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.models.list()


def test_a_management_key_does_not_open_the_gateway_nor_the_reverse(openai_ready):
    owner = openai_ready.members[Role.OWNER]
    _, management = api_key_create(actor=owner, name="m")
    _, gateway_key = api_key_create(actor=owner, name="g", scope=ApiKeyScope.GATEWAY)
    assert (
        Client(headers={"Authorization": f"Bearer {management}"}).get("/v1/models").status_code
        == 401
    )
    assert (
        Client(headers={"Authorization": f"Bearer {gateway_key}"})
        .get("/api/workspaces/current")
        .status_code
        == 401
    )


def test_a_fallback_chain_per_call(gateway, fake_openai):
    from tests.fakes.openai import openai_error

    down = openai_error(503, "overloaded")
    fake_openai.queue(down, down)  # the first model and its one retry
    reply = gateway.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "still there"}],
        extra_body={"fallbacks": ["openai/gpt-4o"]},
    )
    assert reply.choices[0].message.content == "You said: still there"
    served = list(UsageRecord.objects.order_by("created_at").values_list("model", "status"))
    assert served[-1] == ("gpt-4o", "success")


def test_usage_is_exported_through_the_management_api(gateway, openai_ready):
    gateway.chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "count me"}]
    )
    _, key = api_key_create(actor=openai_ready.members[Role.OWNER], name="reports")
    report = Client(headers={"Authorization": f"Bearer {key}"}).get("/api/usage?days=7").json()
    (row,) = report["rows"]
    assert row["provider"] == "openai" and row["model"] == "gpt-4o-mini"
    assert row["calls"] == 1 and row["output_tokens"] > 0
    assert float(row["cost"]) > 0
