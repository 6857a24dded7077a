"""Naming a Service API conversation (Dify's auto_generate_name on /v1/chat-messages): by
default the app's model names it after the first answer, in the background, falling back
to the first question; with auto_generate_name false it stays "New conversation"."""

import json
import time

import httpx
import pytest

from apps.chat import keys
from apps.chat.models import Conversation
from apps.tenants.models import Role
from tests.chat.conftest import make_app
from tests.fakes.openai import openai_error
from tests.fakes.server import Reply

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = "where is the parcel I ordered last tuesday from oslo"
TITLE_REPLY = {
    "id": "chatcmpl-title",
    "object": "chat.completion",
    "created": 1_715_367_049,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": '"Parcel from Oslo"', "refusal": None},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 40, "completion_tokens": 4, "total_tokens": 44},
}


@pytest.fixture
def api(openai_ready, live_server_url):
    app = make_app(openai_ready, "chat")
    raw = keys.app_api_key_create(actor=openai_ready.members[Role.OWNER], app=app)[1]
    with httpx.Client(
        base_url=live_server_url + "/v1", headers={"Authorization": f"Bearer {raw}"}, timeout=30
    ) as client:
        yield client


def name_of(api: httpx.Client, user: str) -> str:
    [conversation] = api.get("/conversations", params={"user": user}).json()["data"]
    return conversation["name"]


def name_once_changed(api: httpx.Client, user: str, *, old: str, within: float = 10) -> str:
    deadline = time.monotonic() + within
    while (name := name_of(api, user)) == old and time.monotonic() < deadline:
        time.sleep(0.05)
    return name


def title_requests(fake) -> list:
    return [r for r in fake.requests if b"short title" in r.body]


def stream_until_first_answer(api: httpx.Client, body: dict, when_started) -> list[dict]:
    """Stream a chat; `when_started()` runs once the first words are in (the model has the
    question), then the stream is read to its end. Returns the events."""
    events: list[dict] = []
    with api.stream("POST", "/chat-messages", json={**body, "response_mode": "streaming"}) as r:
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            events.append(json.loads(line[6:]))
            if len(events) == 1:
                when_started()
    return events


def test_the_model_names_a_new_conversation_after_its_first_answer(api, fake_openai):
    first = api.post("/chat-messages", json={"inputs": {}, "query": QUESTION, "user": "u-1"})
    assert first.status_code == 200, first.text
    name = name_once_changed(api, "u-1", old="New conversation")
    assert name.startswith("You said: Give this conversation a short title")  # the fake's
    again = api.post(
        "/chat-messages",
        json={"inputs": {}, "query": "and now?", "user": "u-1"}
        | {"conversation_id": first.json()["conversation_id"]},
    )
    assert again.status_code == 200
    assert name_of(api, "u-1") == name  # named once, after the first answer only
    assert len(title_requests(fake_openai)) == 1


def test_the_answer_streams_without_waiting_for_the_title(api, fake_openai):
    fake_openai.chunk_delay = 0.02
    slow_title = Reply(
        body=iter([json.dumps(TITLE_REPLY)[:40].encode(), json.dumps(TITLE_REPLY)[40:].encode()]),
        headers={"Content-Type": "application/json"},
        chunk_delay=1.5,  # the title takes three seconds to come
    )
    body = {"inputs": {}, "query": QUESTION, "user": "u-2"}
    events = stream_until_first_answer(api, body, lambda: fake_openai.queue(slow_title))
    assert events[-1]["event"] == "message_end"
    conversation = Conversation.objects.get(pk=events[-1]["conversation_id"])
    assert conversation.name == "New conversation"  # the answer is whole, the title not yet
    assert name_once_changed(api, "u-2", old="New conversation") == "Parcel from Oslo"


def test_a_title_the_model_cannot_write_falls_back_to_the_first_question(api, fake_openai):
    fake_openai.chunk_delay = 0.02
    refusal = openai_error(400, "This model does not write titles.")
    body = {"inputs": {}, "query": QUESTION, "user": "u-3"}
    events = stream_until_first_answer(api, body, lambda: fake_openai.queue(refusal))
    assert events[-1]["event"] == "message_end"
    name = name_once_changed(api, "u-3", old="New conversation")
    assert name == "where is the parcel I ordered last tues…"  # 40 characters


def test_auto_generate_name_false_keeps_the_default_name(api, fake_openai):
    body = {"inputs": {}, "query": QUESTION, "user": "u-4", "auto_generate_name": False}
    first = api.post("/chat-messages", json=body)
    assert first.status_code == 200, first.text
    api.post(
        "/chat-messages",
        json=body | {"query": "and now?", "conversation_id": first.json()["conversation_id"]},
    )
    assert name_of(api, "u-4") == "New conversation"
    assert title_requests(fake_openai) == []


def test_auto_generate_name_must_be_a_boolean(api):
    body = {"inputs": {}, "query": QUESTION, "user": "u-5", "auto_generate_name": "sometimes"}
    response = api.post("/chat-messages", json=body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_param"


def test_a_first_answer_that_failed_is_named_from_the_question(api, fake_openai):
    fake_openai.queue(openai_error(400, "the model refused"))
    failed = api.post("/chat-messages", json={"inputs": {}, "query": "hi there", "user": "u-6"})
    assert failed.status_code == 400
    assert name_once_changed(api, "u-6", old="New conversation") == "hi there"
    assert title_requests(fake_openai) == []  # the model is not asked again
