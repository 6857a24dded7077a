"""An app's fallback models at work: when the app's model fails before answering, the
answer comes from the next model of its chain, over the Service API and the web app's
websocket; the logs say which model answered; when every model fails the user gets the
error they got before there were fallbacks."""

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.urls import reverse

from apps.chat import generation
from apps.chat.models import Message, MessageStatus
from apps.chat.services.conversations import conversation_name_generate
from apps.providers.models import UsageRecord
from apps.tenants.models import Role
from tests.chat.conftest import (
    FLAKY,
    FLAKY_MODEL,
    answer_of,
    converse,
    fail_with,
    make_app,
)
from tests.chat.test_service_api import api_key, sse_events
from tests.chat.test_webapp_stream import Tab, answers, finished, send
from tests.fakes.openai import openai_error

pytestmark = pytest.mark.django_db(transaction=True)

OPENAI_MINI = {"provider": "openai", "name": "gpt-4o-mini"}
DOWN = pytest.mark.parametrize("status", [503, 500, 429], ids=["overloaded", "5xx", "429"])


def chained_app(team, *fallbacks, **config):
    """A chat app on flaky-llm with the given fallback chain."""
    app = make_app(team, "chat", **config)
    app.config["model"].update(
        provider=FLAKY["provider"], name=FLAKY_MODEL, fallbacks=list(fallbacks)
    )
    app.save(update_fields=["config"])
    return app


def stream_chat(base: str, key: str, query: str) -> list[dict]:
    response = httpx.post(
        f"{base}/v1/chat-messages",
        headers={"Authorization": f"Bearer {key}"},
        json={"inputs": {}, "query": query, "user": "u-1", "response_mode": "streaming"},
        timeout=30,
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    return sse_events(response.text)


@DOWN
def test_the_service_api_streams_the_fallbacks_answer_when_the_model_is_down(
    openai_ready, flaky_upstream, fake_openai, live_server_url, status
):
    app = chained_app(openai_ready, OPENAI_MINI)
    fail_with(flaky_upstream, status)
    events = stream_chat(live_server_url, api_key(openai_ready, app), "is anyone there")
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "message_end" and "error" not in kinds
    assert "".join(e["answer"] for e in events if e["event"] == "message") == (
        "You said: is anyone there"
    )
    assert flaky_upstream.requests and fake_openai.requests  # tried first, then the fallback
    message = Message.objects.get(app=app)
    assert (message.model_provider, message.model_name) == ("openai", "gpt-4o-mini")


def test_the_web_app_gets_the_fallbacks_answer_over_its_websocket(
    openai_ready, flaky_upstream, fake_openai, live_server_url
):
    app = chained_app(
        openai_ready, OPENAI_MINI, suggested_questions_after_answer={"enabled": False}
    )
    fail_with(flaky_upstream, 503)
    tab = Tab(live_server_url, f"/chat/{app.site_code}")
    with tab.open() as ws:
        send(ws, query="hello from the browser")
        frames = finished(ws)
    assert answers(frames)[-1].strip() == "<p>You said: hello from the browser</p>"
    assert Message.objects.get(app=app).model_name == "gpt-4o-mini"


def test_the_chain_is_tried_in_order(openai_ready, flaky_upstream, fake_openai):
    app = chained_app(openai_ready, {"provider": "openai", "name": "gpt-4o"}, OPENAI_MINI)
    fail_with(flaky_upstream, 503)
    fake_openai.queue(openai_error(429))  # the first fallback is rate-limited too
    run, events = converse(app, query="third time lucky")
    assert answer_of(events) == "You said: third time lucky"
    tried = list(UsageRecord.objects.order_by("created_at").values_list("model", "status"))
    assert tried == [
        (FLAKY_MODEL, "provider_unavailable"),
        ("gpt-4o", "provider_rate_limited"),
        ("gpt-4o-mini", "success"),
    ]
    assert Message.objects.get(pk=run.message_id).model_name == "gpt-4o-mini"


def test_when_every_model_fails_the_user_gets_the_error_they_got_before(
    openai_ready, flaky_upstream, fake_openai
):
    chained = chained_app(openai_ready, OPENAI_MINI)
    alone = make_app(openai_ready, "chat")  # on gpt-4o-mini, the chain's last model
    fail_with(flaky_upstream, 503)
    fail_with(fake_openai, 503)
    run, with_chain = converse(chained, query="hello")
    _, without = converse(alone, query="hello")
    assert isinstance(with_chain[-1], generation.GenerationFailed)
    assert with_chain[-1] == without[-1]
    assert with_chain[-1].code == "completion_request_error"
    assert "overloaded" in with_chain[-1].message
    message = Message.objects.get(pk=run.message_id)
    assert message.status == MessageStatus.ERROR and "overloaded" in message.error


def test_the_logs_show_which_model_answered(openai_ready, flaky_upstream, fake_openai):
    app = chained_app(openai_ready, OPENAI_MINI)
    first, _ = converse(app, query="while it works")
    fail_with(flaky_upstream, 429)
    second, _ = converse(app, query="while it is rate limited")
    client = openai_ready.client(Role.EDITOR)
    logs = client.get(reverse("app_logs", args=[app.id])).content.decode()
    rows = logs.split('data-testid="log-row"')[1:]  # newest first
    assert "gpt-4o-mini" in rows[0] and FLAKY_MODEL not in rows[0]
    assert FLAKY_MODEL in rows[1]
    detail = client.get(reverse("app_message", args=[app.id, second.message_id]))
    assert "<code>openai/gpt-4o-mini</code>" in detail.content.decode()
    answered = Message.objects.get(pk=second.message_id)
    assert answered.total_price > 0  # at the fallback's prices: flaky-llm has none
    assert Message.objects.get(pk=first.message_id).model_name == FLAKY_MODEL


def test_follow_ups_and_the_conversation_title_come_from_the_chain_too(
    openai_ready, flaky_upstream, fake_openai
):
    app = chained_app(openai_ready, OPENAI_MINI, suggested_questions_after_answer={"enabled": True})
    fail_with(flaky_upstream, 503)
    run, events = converse(app, query="plan a trip")
    suggested = [e for e in events if isinstance(e, generation.SuggestedQuestions)]
    assert suggested and suggested[0].questions
    conversation = Message.objects.get(pk=run.message_id).conversation
    name = async_to_sync(conversation_name_generate)(app=app, conversation=conversation)
    assert name.startswith("You said:")  # written by the fallback, not cut from the question


def test_a_fallback_no_longer_set_up_is_passed_over(openai_ready, flaky_upstream, fake_openai):
    gone = {"provider": "anthropic", "name": "claude-3-5-haiku-20241022"}
    app = chained_app(openai_ready, gone, OPENAI_MINI)
    fail_with(flaky_upstream, 503)
    _, events = converse(app, query="still here")
    assert answer_of(events) == "You said: still here"
