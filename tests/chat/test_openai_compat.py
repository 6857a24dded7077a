"""Every app is an OpenAI-compatible model: the openai SDK talks to an app with its key."""

import openai
import pytest

from apps.chat import keys
from apps.chat.models import Message
from apps.tenants.models import Role
from tests.chat.conftest import make_app

pytestmark = pytest.mark.django_db(transaction=True)


def client_for(team, app, live_server_url) -> openai.OpenAI:
    raw = keys.app_api_key_create(actor=team.members[Role.OWNER], app=app)[1]
    return openai.OpenAI(api_key=raw, base_url=live_server_url + "/v1", max_retries=0)


def test_an_app_answers_the_openai_sdk(openai_ready, live_server_url, fake_openai):
    app = make_app(openai_ready, "chat", pre_prompt="House style: short.")
    client = client_for(openai_ready, app, live_server_url)
    reply = client.chat.completions.create(
        model="anything",
        messages=[
            {"role": "system", "content": "ignored"},
            {"role": "user", "content": "earlier"},
            {"role": "assistant", "content": "earlier answer"},
            {"role": "user", "content": "hello app"},
        ],
        user="sdk-user",
    )
    assert reply.choices[0].message.content == "You said: hello app"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.total_tokens > 0
    sent = fake_openai.requests[-1].json()["messages"]
    assert sent[0]["content"] == "House style: short."  # the app's prompt, not the caller's
    message = Message.objects.get(query="hello app")
    assert message.from_source == "openai" and message.end_user.session_id == "sdk-user"


def test_streaming_carries_usage_in_the_last_chunk(openai_ready, live_server_url):
    app = make_app(openai_ready, "chat")
    client = client_for(openai_ready, app, live_server_url)
    chunks = list(
        client.chat.completions.create(
            model="app", messages=[{"role": "user", "content": "stream me"}], stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: stream me"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    with_option = list(
        client.chat.completions.create(
            model="app",
            messages=[{"role": "user", "content": "again"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert with_option[-1].choices == [] and with_option[-1].usage.completion_tokens > 0


def test_a_conversation_goes_on_with_the_extension(openai_ready, live_server_url, fake_openai):
    app = make_app(openai_ready, "chat")
    client = client_for(openai_ready, app, live_server_url)
    first = client.chat.completions.create(
        model="app", messages=[{"role": "user", "content": "I am Ada"}], user="u"
    )
    conversation_id = first.model_extra["conversation_id"]
    client.chat.completions.create(
        model="app",
        messages=[{"role": "user", "content": "who am I"}],
        user="u",
        extra_body={"conversation_id": conversation_id},
    )
    sent = [m["content"] for m in fake_openai.requests[-1].json()["messages"]]
    assert "I am Ada" in sent


def test_a_completion_app_takes_the_message_as_its_query(openai_ready, live_server_url):
    app = make_app(openai_ready, "completion")
    client = client_for(openai_ready, app, live_server_url)
    reply = client.chat.completions.create(
        model="app", messages=[{"role": "user", "content": "a haiku"}]
    )
    assert reply.choices[0].message.content == "You said: a haiku"


def test_errors_come_in_openai_shape(openai_ready, live_server_url):
    app = make_app(openai_ready, "chat", model={"provider": "", "name": ""})
    client = client_for(openai_ready, app, live_server_url)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="app", messages=[{"role": "user", "content": "x"}])
    assert caught.value.body["code"] == "app_unavailable"
    bad = openai.OpenAI(api_key="app-wrong", base_url=live_server_url + "/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="app", messages=[{"role": "user", "content": "x"}])


def test_the_app_rate_limit_is_a_429_with_retry_after(openai_ready, live_server_url):
    app = make_app(openai_ready, "chat")
    app.rate_limit_per_minute = 1
    app.save()
    client = client_for(openai_ready, app, live_server_url)
    client.chat.completions.create(model="app", messages=[{"role": "user", "content": "one"}])
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="app", messages=[{"role": "user", "content": "two"}])
    assert int(caught.value.response.headers["Retry-After"]) > 0
