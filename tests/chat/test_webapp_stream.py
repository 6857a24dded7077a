"""The web app's websocket against the real server (daphne), the real pipeline and a fake
OpenAI: answers stream in frames of sanitised HTML, survive a closed tab, reach every tab
on the conversation, stop, regenerate; strangers cannot connect."""

from __future__ import annotations

import html
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from apps.chat.models import Conversation, Message, MessageStatus
from tests.chat.conftest import make_app

live_db = pytest.mark.django_db(transaction=True)
ANSWER_FRAGMENT = re.compile(
    r'<div id="answer-([0-9a-f-]+)" hx-swap-oob="innerHTML">(.*?)</div>', re.S
)


class Tab:
    """A browser tab on a web app page: its cookies, the page, and the socket it opens."""

    def __init__(self, base: str, path: str, client: httpx.Client | None = None):
        self.base = base
        self.http = client or httpx.Client(base_url=base, follow_redirects=False, timeout=15)
        response = self.http.get(path)
        assert response.status_code == 200, response.status_code
        self.page = response.text
        self.ws_path = html.unescape(re.search(r'ws-connect="([^"]+)"', self.page).group(1))

    @property
    def token(self) -> str:
        return parse_qs(urlsplit(self.ws_path).query)["visitor"][0]

    def open(self, ws_path: str | None = None) -> ClientConnection:
        cookies = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        return connect(
            self.base.replace("http://", "ws://") + (ws_path or self.ws_path),
            origin=self.base,
            additional_headers={"Cookie": cookies} if cookies else {},
            open_timeout=10,
        )


def send(ws: ClientConnection, **fields) -> None:
    """What the htmx ws extension sends for the chat form."""
    ws.send(json.dumps({"action": "send", "conversation_id": "", "HEADERS": {}, **fields}))


def until(ws: ClientConnection, pattern: str, timeout: float = 20) -> list[str]:
    """Frames until one matches `pattern` (a regex), that one included."""
    frames, deadline = [], time.monotonic() + timeout
    while True:
        frame = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        frames.append(frame)
        if re.search(pattern, frame):
            return frames


def finished(ws: ClientConnection, status: str = "normal") -> list[str]:
    return until(ws, rf'data-status="{status}"')


def answers(frames: list[str]) -> list[str]:
    return [m.group(2) for f in frames for m in ANSWER_FRAGMENT.finditer(f)]


@pytest.fixture
def live(openai_ready, fake_openai, live_server_url, transactional_db):
    fake_openai.chunk_delay = 0.05  # slower than a frame, so the answer comes in pieces
    return live_server_url


@pytest.fixture
def chat(openai_ready):
    return make_app(openai_ready, "chat", suggested_questions_after_answer={"enabled": False})


@live_db
def test_an_answer_streams_in_frames_of_rendered_markdown(chat, live):
    tab = Tab(live, f"/chat/{chat.site_code}")
    with tab.open() as ws:
        send(ws, query="hello **bold** <script>alert(1)</script> world")
        frames = finished(ws)
    everything = "".join(frames)
    conversation = Conversation.objects.get(app=chat)
    message = Message.objects.get(conversation=conversation)
    # The page learns its conversation, lists it, and gets the new turn, running.
    assert f'id="conversation-id" name="conversation_id" value="{conversation.pk}"' in everything
    assert '<div hx-swap-oob="afterbegin:#conversation-items"><li' in everything
    assert '<div hx-swap-oob="beforeend:#chat-thread"><article' in everything
    assert 'data-status="running"' in everything
    # Then the answer, in several frames, each the whole answer so far.
    pieces = answers(frames)
    assert len(pieces) > 2
    assert all(piece.startswith("<p>You") for piece in pieces), pieces
    assert "<strong>bold</strong>" in pieces[-1] and "<strong>bold</strong>" in frames[-1]
    assert "&lt;script&gt;" in pieces[-1]  # shown as text
    assert "<script>" not in everything  # the model's HTML never arrives as HTML
    # The last frame is the finished turn, as the page itself would render it.
    assert f'id="turn-{message.pk}"' in frames[-1] and "Regenerate" in frames[-1]
    message.refresh_from_db()
    assert message.status == MessageStatus.NORMAL
    assert message.answer.startswith("You said: hello **bold**")


@live_db
def test_a_fast_model_is_sent_a_frame_at_a_time_not_a_token_at_a_time(chat, fake_openai, live):
    fake_openai.chunk_delay = 0.002
    words = " ".join(f"w{i}" for i in range(200))
    tab = Tab(live, f"/chat/{chat.site_code}")
    with tab.open() as ws:
        send(ws, query=words)
        pieces = answers(finished(ws))
    assert 1 < len(pieces) < 80  # about 200 tokens, sent together every 30 ms or so


@live_db
def test_two_tabs_on_one_conversation_both_see_the_stream(chat, fake_openai, live):
    first = Tab(live, f"/chat/{chat.site_code}")
    with first.open() as ws:
        send(ws, query="first question")
        finished(ws)
    conversation = Conversation.objects.get(app=chat)
    path = f"/chat/{chat.site_code}/conversations/{conversation.pk}"
    one = Tab(live, path, client=first.http)
    other = Tab(live, path, client=first.http)
    with one.open() as ws_one, other.open() as ws_other:
        send(ws_one, query="second question", conversation_id=str(conversation.pk))
        seen_here = finished(ws_one)
        seen_there = finished(ws_other)
    for frames in (seen_here, seen_there):
        assert "beforeend:#chat-thread" in "".join(frames)
        assert "You said: second question" in html.unescape(frames[-1])
        assert len(answers(frames)) > 1  # both watched it grow
    assert Message.objects.filter(conversation=conversation).count() == 2


@live_db
def test_a_closed_tab_does_not_lose_the_answer_and_a_new_one_resumes(chat, fake_openai, live):
    fake_openai.chunk_delay = 0.08
    question = " ".join(f"word{i}" for i in range(40))
    tab = Tab(live, f"/chat/{chat.site_code}")
    with tab.open() as ws:
        send(ws, query=question)
        until(ws, r'hx-swap-oob="innerHTML">[^\n]*word3 ')  # a few words came; the tab closes
    message = Message.objects.get(app=chat)
    assert message.status == MessageStatus.RUNNING
    # Reopened while still being written: the page shows it running and follows it.
    path = f"/chat/{chat.site_code}/conversations/{message.conversation_id}"
    again = Tab(live, path, client=tab.http)
    assert 'data-status="running"' in again.page
    assert f"watch={message.pk}" in again.ws_path
    with again.open() as ws:
        frames = finished(ws)
    assert answers(frames)[0].startswith("<p>You said: word0 word1 word2 word3")  # at once
    assert f"You said: {question}" in html.unescape(frames[-1])
    # Reopened later: the saved answer is simply on the page.
    message.refresh_from_db()
    assert message.status == MessageStatus.NORMAL
    later = Tab(live, path, client=tab.http)
    assert "word39" in later.page and 'data-status="normal"' in later.page


@live_db
def test_stop_keeps_what_was_written(chat, fake_openai, live):
    fake_openai.chunk_delay = 0.08
    tab = Tab(live, f"/chat/{chat.site_code}")
    with tab.open() as ws:
        send(ws, query=" ".join(f"planet{i}" for i in range(80)))
        until(ws, r'hx-swap-oob="innerHTML">[^\n]*planet3')
        ws.send(json.dumps({"action": "stop", "conversation_id": ""}))
        frames = finished(ws, "stopped")
    assert "Stopped." in frames[-1]
    message = Message.objects.get(app=chat)
    assert message.status == MessageStatus.STOPPED
    assert "planet3" in message.answer and "planet79" not in message.answer


@live_db
def test_regenerate_replaces_the_answer_in_place(chat, live):
    tab = Tab(live, f"/chat/{chat.site_code}")
    with tab.open() as ws:
        send(ws, query="first")
        finished(ws)
        send(ws, query="second", conversation_id=str(Conversation.objects.get().pk))
        finished(ws)
        old = Message.objects.get(query="second")
        ws.send(json.dumps({"action": "regenerate", "message_id": str(old.pk)}))
        frames = finished(ws)
    new = Message.objects.exclude(pk=old.pk).get(query="second")
    assert f'<div hx-swap-oob="outerHTML:#turn-{old.pk}"><article' in "".join(frames)
    assert new.parent_message_id == old.parent_message_id
    page = Tab(live, f"/chat/{chat.site_code}/conversations/{new.conversation_id}", tab.http).page
    assert page.count('data-testid="turn"') == 2  # first, and the new second; not the old one
    assert f'id="turn-{new.pk}"' in page and f'id="turn-{old.pk}"' not in page


@live_db
def test_bad_requests_get_a_message_not_a_broken_socket(chat, live):
    tab = Tab(live, f"/chat/{chat.site_code}")
    with tab.open() as ws:
        ws.send("not json")
        assert "The message could not be read." in ws.recv(timeout=10)
        send(ws, query="   ")
        assert "Write a message to send." in ws.recv(timeout=10)
        ws.send(json.dumps({"action": "regenerate", "message_id": "nope"}))
        assert "That message is gone" in ws.recv(timeout=10)
        send(ws, query="still here?")
        assert "You said: still here?" in html.unescape(finished(ws)[-1])


@live_db
def test_strangers_cannot_watch_or_join(chat, openai_ready, other_team, live):
    owner = Tab(live, f"/chat/{chat.site_code}")
    with owner.open() as ws:
        send(ws, query="my secret")
        finished(ws)
    conversation = Conversation.objects.get(app=chat)
    message = Message.objects.get(app=chat)
    stranger = Tab(live, f"/chat/{chat.site_code}")
    base = f"/ws/webapp/{chat.site_code}/?visitor="
    refused = [
        base + "forged",  # no valid token, no session of this app
        f"{stranger.ws_path}&conversation={conversation.pk}",  # someone else's conversation
        f"{stranger.ws_path}&conversation=not-a-uuid",
    ]
    other_app = make_app(other_team, "chat")
    foreign = Tab(live, f"/chat/{other_app.site_code}")
    refused.append(f"/ws/webapp/{chat.site_code}/?visitor={foreign.token}")  # another app's
    cookieless = Tab.__new__(Tab)
    cookieless.base, cookieless.http = live, httpx.Client()
    for who, path in zip((cookieless, stranger, stranger, cookieless), refused, strict=True):
        with pytest.raises(InvalidStatus) as caught, who.open(path):
            pass
        assert caught.value.response.status_code == 403, path
    # A watch list with someone else's message is ignored, not followed.
    with stranger.open(f"{stranger.ws_path}&watch={message.pk}") as ws:
        send(ws, query="hello")
        frames = finished(ws)
    assert "my secret" not in "".join(frames)


@live_db
def test_the_text_generator_streams_its_result(openai_ready, live):
    form = [{"paragraph": {"label": "Topic", "variable": "topic", "required": True}}]
    writer = make_app(openai_ready, "completion", user_input_form=form, pre_prompt="{{topic}}")
    tab = Tab(live, f"/completion/{writer.site_code}")
    with tab.open() as ws:
        send(ws, input_topic="")
        assert "topic is required" in ws.recv(timeout=10)
        send(ws, input_topic="moons of *Jupiter*")
        frames = finished(ws)
    assert 'id="completion-result"' in "".join(frames)
    assert "<em>Jupiter</em>" in frames[-1] and "Save" in frames[-1]
    message = Message.objects.get(app=writer)
    assert message.inputs == {"topic": "moons of *Jupiter*"} and message.conversation is None


@live_db
def test_follow_up_questions_arrive_with_the_finished_answer(openai_ready, live):
    app = make_app(openai_ready, "chat", suggested_questions_after_answer={"enabled": True})
    tab = Tab(live, f"/chat/{app.site_code}")
    with tab.open() as ws:
        send(ws, query="tell me about <b>rings</b>")
        frames = finished(ws)
    message = Message.objects.get(app=app)
    assert message.suggested_questions  # the fake's echo, read as questions
    last = frames[-1]
    assert 'data-testid="follow-ups"' in last
    for question in message.suggested_questions:
        assert f'data-suggestion="{html.escape(question)}"' in last
    assert "<b>rings</b>" not in last


@live_db
def test_a_members_only_app_streams_to_members_only(chat, openai_ready, other_team, live):
    from tests.providers.test_playground import session_cookie

    chat.site_requires_login = True
    chat.save(update_fields=["site_requires_login"])
    member = httpx.Client(base_url=live, headers={"Cookie": session_cookie(openai_ready.owner)})
    tab = Tab(live, f"/chat/{chat.site_code}", client=member)
    with connect(
        live.replace("http://", "ws://") + tab.ws_path,
        origin=live,
        additional_headers={"Cookie": session_cookie(openai_ready.owner)},
        open_timeout=10,
    ) as ws:
        send(ws, query="members only")
        assert "You said: members only" in html.unescape(finished(ws)[-1])
    # The same page link, without the member's session, or with an outsider's: refused.
    for cookie in ("", session_cookie(other_team.owner)):
        with pytest.raises(InvalidStatus) as caught:
            with connect(
                live.replace("http://", "ws://") + tab.ws_path,
                origin=live,
                additional_headers={"Cookie": cookie} if cookie else {},
                open_timeout=10,
            ):
                pass
        assert caught.value.response.status_code == 403


@live_db
def test_regenerating_the_first_answer_replaces_it(chat, live):
    tab = Tab(live, f"/chat/{chat.site_code}")
    with tab.open() as ws:
        send(ws, query="only question")
        finished(ws)
        old = Message.objects.get()
        ws.send(json.dumps({"action": "regenerate", "message_id": str(old.pk)}))
        finished(ws)
    page = Tab(live, f"/chat/{chat.site_code}/conversations/{old.conversation_id}", tab.http).page
    assert page.count('data-testid="turn"') == 1


@live_db
def test_the_first_turn_takes_the_input_variables(openai_ready, live):
    form = [
        {
            "select": {
                "label": "Language",
                "variable": "lang",
                "options": ["en", "fr"],
                "required": True,
            }
        }
    ]
    app = make_app(openai_ready, "chat", user_input_form=form, pre_prompt="Answer in {{lang}}.")
    tab = Tab(live, f"/chat/{app.site_code}")
    assert 'name="input_lang"' in tab.page
    with tab.open() as ws:
        send(ws, query="bonjour")
        assert "lang is required" in ws.recv(timeout=10)
        send(ws, query="bonjour", input_lang="de")
        assert "must be one of the following: en, fr" in html.unescape(ws.recv(timeout=10))
        send(ws, query="bonjour", input_lang="fr")
        frames = finished(ws)
    assert '<span id="chat-inputs" hidden hx-swap-oob="true"></span>' in "".join(frames)
    conversation = Conversation.objects.get(app=app)
    assert conversation.inputs == {"lang": "fr"}
    page = Tab(live, f"/chat/{app.site_code}/conversations/{conversation.pk}", tab.http).page
    assert 'name="input_lang"' not in page  # later turns keep the first turn's inputs
