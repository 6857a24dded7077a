"""The Service API through Dify's own client SDK and raw HTTP against the real server:
blocking and streaming chats, SSE framing, conversations, messages, feedback, stop,
files, and Dify's error bodies."""

import json
import time

import httpx
import pytest
from dify_client import ChatClient, CompletionClient

from apps.chat import keys
from apps.chat.models import Conversation, Message, MessageFeedback, MessageStatus
from apps.tenants.models import Role
from tests.chat.conftest import make_app

pytestmark = pytest.mark.django_db(transaction=True)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def api_key(team, app) -> str:
    return keys.app_api_key_create(actor=team.members[Role.OWNER], app=app)[1]


def chat_client(live_server_url, raw) -> ChatClient:
    client = ChatClient(raw)
    client.base_url = live_server_url + "/v1"
    return client


def sse_events(text: str) -> list[dict]:
    return [json.loads(line[6:]) for line in text.split("\n\n") if line.startswith("data: ")]


@pytest.fixture
def chat(openai_ready, live_server_url):
    app = make_app(openai_ready, "chat", pre_prompt="Be brief.")
    return app, chat_client(live_server_url, api_key(openai_ready, app))


def test_the_dify_sdk_chats_blocking_and_continues_the_conversation(chat):
    app, client = chat
    first = client.create_chat_message(inputs={}, query="hello there", user="u-1")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["event"] == "message" and body["mode"] == "chat"
    assert body["answer"] == "You said: hello there"
    assert body["metadata"]["usage"]["total_tokens"] > 0
    assert set(body) >= {"task_id", "id", "message_id", "conversation_id", "created_at"}
    second = client.create_chat_message(
        inputs={}, query="again", user="u-1", conversation_id=body["conversation_id"]
    ).json()
    assert second["conversation_id"] == body["conversation_id"]
    history = client.get_conversation_messages("u-1", body["conversation_id"]).json()
    assert [m["query"] for m in history["data"]] == ["hello there", "again"]
    assert history["has_more"] is False
    listed = client.get_conversations("u-1").json()
    assert [c["id"] for c in listed["data"]] == [body["conversation_id"]]
    assert client.get_conversations("someone-else").json()["data"] == []


def test_the_dify_sdk_streams_dify_events(chat):
    app, client = chat
    response = client.create_chat_message(
        inputs={}, query="one two three", user="u-2", response_mode="streaming"
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in response.iter_lines(decode_unicode=True) if line]
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "message_end" and set(kinds[:-1]) == {"message"}
    assert "".join(e["answer"] for e in events[:-1]) == "You said: one two three"
    for event in events:
        assert {"task_id", "message_id", "conversation_id", "created_at"} <= set(event)
    usage = events[-1]["metadata"]["usage"]
    assert {
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "total_price",
        "currency",
        "latency",
        "prompt_unit_price",
        "completion_price",
    } <= set(usage)
    message = Message.objects.get(pk=events[-1]["message_id"])
    assert message.status == MessageStatus.NORMAL and message.answer == "You said: one two three"


def test_sse_framing_is_exactly_dify(chat, live_server_url):
    app, client = chat
    with httpx.Client(base_url=live_server_url + "/v1") as http:
        response = http.post(
            "/chat-messages",
            headers={"Authorization": f"Bearer {client.api_key}"},
            json={"inputs": {}, "query": "frame me", "user": "u-3", "response_mode": "streaming"},
        )
    text = response.text
    assert text.startswith("data: {") and text.endswith("}\n\n")
    for block in text.split("\n\n")[:-1]:
        assert block.startswith("data: ") and "\n" not in block
    assert sse_events(text)[-1]["event"] == "message_end"


def test_completion_app_blocking_and_streaming(openai_ready, live_server_url):
    app = make_app(openai_ready, "completion")
    client = CompletionClient(api_key(openai_ready, app))
    client.base_url = live_server_url + "/v1"
    body = client.create_completion_message({"query": "write a poem"}, "blocking", "u-4").json()
    assert body["answer"] == "You said: write a poem" and "conversation_id" not in body
    stream = client.create_completion_message({"query": "stream it"}, "streaming", "u-4")
    events = [json.loads(line[6:]) for line in stream.iter_lines(decode_unicode=True) if line]
    assert events[-1]["event"] == "message_end"
    missing = client.create_completion_message({}, "blocking", "u-4")
    assert missing.status_code == 400
    assert (
        missing.json()["code"] == "invalid_param"
        and "query is required" in missing.json()["message"]
    )


def test_errors_have_difys_body(chat, live_server_url):
    app, client = chat
    with httpx.Client(base_url=live_server_url + "/v1") as http:
        no_user = http.post(
            "/chat-messages",
            headers={"Authorization": f"Bearer {client.api_key}"},
            json={"inputs": {}, "query": "hi"},
        )
        bad_key = http.get("/parameters", headers={"Authorization": "Bearer app-nope"})
    assert no_user.status_code == 400
    assert no_user.json()["code"] == "invalid_param" and "user" in no_user.json()["message"]
    assert bad_key.status_code == 401 and bad_key.json()["code"] == "unauthorized"
    missing = client.create_chat_message(
        inputs={}, query="hi", user="u-5", conversation_id="3f1c0e5e-0000-4000-8000-000000000000"
    )
    assert missing.status_code == 404
    assert missing.json() == {
        "code": "not_found",
        "message": "Conversation Not Exists.",
        "status": 404,
    }


def test_rename_feedback_and_delete_a_conversation(chat):
    app, client = chat
    body = client.create_chat_message(inputs={}, query="name me", user="u-6").json()
    cid, mid = body["conversation_id"], body["message_id"]
    renamed = client.rename_conversation(cid, "Trip plans", "u-6").json()
    assert renamed["name"] == "Trip plans"
    assert client.rename_conversation(cid, "x", "intruder").status_code == 404
    assert client.message_feedback(mid, "like", "u-6").json() == {"result": "success"}
    assert MessageFeedback.objects.get(message_id=mid).rating == "like"
    assert client.message_feedback(mid, "like", "intruder").status_code == 404
    history = client.get_conversation_messages("u-6", cid).json()
    assert history["data"][0]["feedback"] == {"rating": "like"}
    client.message_feedback(mid, None, "u-6")
    assert not MessageFeedback.objects.filter(message_id=mid).exists()
    gone = client._send_request("DELETE", f"/conversations/{cid}", {"user": "u-6"})
    assert gone.status_code == 204
    assert not Conversation.objects.filter(pk=cid).exists()


def test_parameters_info_and_meta(chat):
    app, client = chat
    params = client.get_application_parameters("u-7").json()
    assert params["user_input_form"] == [] and "system_parameters" in params
    assert params["suggested_questions_after_answer"] == {"enabled": False}
    info = client._send_request("GET", "/info").json()
    assert info["name"] == app.name and info["mode"] == "chat"
    assert client._send_request("GET", "/meta").json() == {"tool_icons": {}}


def test_an_uploaded_image_reaches_a_vision_model(openai_ready, live_server_url, fake_openai):
    file_upload = {"image": {"enabled": True, "number_limits": 2, "detail": "low"}}
    model = {"provider": "openai", "name": "gpt-4o", "mode": "chat", "completion_params": {}}
    app = make_app(openai_ready, "chat", file_upload=file_upload, model=model)
    client = chat_client(live_server_url, api_key(openai_ready, app))
    uploaded = client.file_upload("u-8", {"file": ("cat.png", PNG, "image/png")})
    assert uploaded.status_code == 201, uploaded.text
    file_id = uploaded.json()["id"]
    assert uploaded.json()["mime_type"] == "image/png"
    files = [{"type": "image", "transfer_method": "local_file", "upload_file_id": file_id}]
    body = client.create_chat_message(inputs={}, query="what is it", user="u-8", files=files)
    assert body.json()["answer"] == "You said: what is it [1 image(s)]"
    not_image = client.file_upload("u-8", {"file": ("x.png", b"hello", "image/png")})
    assert not_image.status_code == 415 and not_image.json()["code"] == "unsupported_file_type"


def test_another_workspaces_file_is_not_found(openai_ready, other_team, live_server_url):
    file_upload = {"image": {"enabled": True}}
    app = make_app(openai_ready, "chat", file_upload=file_upload)
    client = chat_client(live_server_url, api_key(openai_ready, app))
    theirs = make_app(other_team, "chat", file_upload=file_upload)
    their_client = chat_client(live_server_url, api_key(other_team, theirs))
    their_file = their_client.file_upload("x", {"file": ("a.png", PNG, "image/png")}).json()["id"]
    files = [{"type": "image", "transfer_method": "local_file", "upload_file_id": their_file}]
    response = client.create_chat_message(inputs={}, query="hi", user="u-9", files=files)
    assert response.status_code == 404 and response.json()["message"] == "File not found."


def test_stop_ends_a_streaming_answer_and_keeps_the_part(chat, live_server_url, fake_openai):
    app, client = chat
    fake_openai.chunk_delay = 0.1
    query = " ".join(f"w{i}" for i in range(40))
    response = client.create_chat_message(
        inputs={}, query=query, user="u-10", response_mode="streaming"
    )
    events = []
    for line in response.iter_lines(decode_unicode=True):
        if not line:
            continue
        events.append(json.loads(line[6:]))
        if len(events) == 2:
            stopped = client._send_request(
                "POST", f"/chat-messages/{events[0]['task_id']}/stop", {"user": "u-10"}
            )
            assert stopped.json() == {"result": "success"}
    assert events[-1]["event"] == "message_end"
    message = Message.objects.get(pk=events[-1]["message_id"])
    assert message.status == MessageStatus.STOPPED
    assert 0 < len(message.answer) < len("You said: " + query)
    foreign = client._send_request(
        "POST", f"/chat-messages/{events[0]['task_id']}/stop", {"user": "intruder"}
    )
    assert foreign.status_code == 404


def test_a_closed_client_does_not_lose_the_answer(chat, live_server_url, fake_openai):
    app, client = chat
    fake_openai.chunk_delay = 0.05
    with httpx.Client(base_url=live_server_url + "/v1", timeout=10) as http:
        with http.stream(
            "POST",
            "/chat-messages",
            headers={"Authorization": f"Bearer {client.api_key}"},
            json={
                "inputs": {},
                "query": "a b c d e f g",
                "user": "u-11",
                "response_mode": "streaming",
            },
        ) as response:
            first = next(response.iter_lines())
    message_id = json.loads(first[6:])["message_id"]
    import time

    for _ in range(100):
        message = Message.objects.get(pk=message_id)
        if message.status != MessageStatus.RUNNING:
            break
        time.sleep(0.1)
    assert message.status == MessageStatus.NORMAL
    assert message.answer == "You said: a b c d e f g"


def test_output_moderation_and_errors_arrive_as_dify_events(
    openai_ready, live_server_url, fake_openai
):
    from tests.fakes.openai import openai_error

    moderation = {
        "enabled": True,
        "type": "keywords",
        "config": {
            "keywords": "secret",
            "inputs_config": {"enabled": False},
            "outputs_config": {"enabled": True, "preset_response": "[removed]"},
        },
    }
    app = make_app(openai_ready, "chat", sensitive_word_avoidance=moderation)
    client = chat_client(live_server_url, api_key(openai_ready, app))
    stream = client.create_chat_message({}, "the secret plan", "u-12", response_mode="streaming")
    events = [json.loads(line[6:]) for line in stream.iter_lines(decode_unicode=True) if line]
    replace = next(e for e in events if e["event"] == "message_replace")
    assert replace["answer"] == "[removed]" and replace["reason"] == "output_moderation"
    assert events[-1]["event"] == "message_end"
    # The model names the new conversation after the answer: let it, so the next call
    # is the one that meets the queued error.
    deadline = time.monotonic() + 10
    while client.get_conversations("u-12").json()["data"][0]["name"] == "New conversation":
        assert time.monotonic() < deadline, "the conversation was never named"
        time.sleep(0.05)
    fake_openai.queue(openai_error(400, "the model refused"))
    stream = client.create_chat_message({}, "hello", "u-12", response_mode="streaming")
    events = [json.loads(line[6:]) for line in stream.iter_lines(decode_unicode=True) if line]
    assert events[-1]["event"] == "error" and events[-1]["status"] == 400
    assert events[-1]["code"] == "completion_request_error" and events[-1]["message"]
    fake_openai.queue(openai_error(400, "the model refused"))
    blocking = client.create_chat_message({}, "hello", "u-12")
    assert blocking.status_code == 400 and blocking.json()["code"] == "completion_request_error"


def test_suggested_questions_through_the_api(openai_ready, live_server_url):
    app = make_app(openai_ready, "chat", suggested_questions_after_answer={"enabled": True})
    client = chat_client(live_server_url, api_key(openai_ready, app))
    body = client.create_chat_message({}, "plan a trip", "u-13").json()
    suggested = client._send_request(
        "GET", f"/messages/{body['message_id']}/suggested", params={"user": "u-13"}
    )
    assert suggested.status_code == 200 and suggested.json()["result"] == "success"
    assert suggested.json()["data"] and all(isinstance(q, str) for q in suggested.json()["data"])
    plain = make_app(openai_ready, "chat")
    plain_client = chat_client(live_server_url, api_key(openai_ready, plain))
    other = plain_client.create_chat_message({}, "hi", "u-13").json()
    refused = plain_client._send_request(
        "GET", f"/messages/{other['message_id']}/suggested", params={"user": "u-13"}
    )
    assert refused.status_code == 400


def test_annotations_feedbacks_site_and_file_preview(chat, live_server_url):
    app, client = chat
    made = client._send_request(
        "POST", "/apps/annotations", {"question": "Opening hours?", "answer": "9 to 5"}
    )
    assert made.status_code == 200 and made.json()["answer"] == "9 to 5"
    note_id = made.json()["id"]
    changed = client._send_request(
        "PUT", f"/apps/annotations/{note_id}", {"question": "Opening hours?", "answer": "8 to 4"}
    )
    assert changed.json()["answer"] == "8 to 4"
    listed = client._send_request("GET", "/apps/annotations", params={"limit": 10}).json()
    assert listed["total"] == 1 and listed["data"][0]["id"] == note_id
    assert client._send_request("DELETE", f"/apps/annotations/{note_id}").status_code == 204
    body = client.create_chat_message({}, "rate me", "u-14").json()
    client.message_feedback(body["message_id"], "dislike", "u-14")
    feedbacks = client._send_request("GET", "/app/feedbacks").json()["data"]
    assert [f["rating"] for f in feedbacks] == ["dislike"]
    assert client._send_request("GET", "/site").json()["title"] == app.name
    uploaded = client.file_upload("u-14", {"file": ("cat.png", PNG, "image/png")}).json()
    preview = client._send_request("GET", f"/files/{uploaded['id']}/preview")
    assert preview.content == PNG and preview.headers["content-type"] == "image/png"
