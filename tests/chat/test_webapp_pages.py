"""The public web app pages: who gets in, what a visitor sees (only their own things), the
small writes (rename, delete, feedback, saved results), and that these pages alone may be
framed by other sites."""

import json
import re

import pytest
from django.test import Client

from apps.chat.models import (
    App,
    Conversation,
    EndUser,
    FromSource,
    Message,
    MessageFeedback,
    MessageStatus,
    SavedMessage,
)
from apps.chat.visitors import VISITOR_HEADER
from apps.tenants.models import Role
from tests.chat.conftest import make_app
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def visit(path: str, client: Client | None = None) -> tuple[Client, str, str]:
    """Open a web app page as a browser would: the client, the page, the visitor token."""
    client = client or Client()
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    page = response.content.decode()
    headers = re.search(r"hx-headers='([^']*)'", page.split('class="webapp"')[1]).group(1)
    token = json.loads(headers.replace("&quot;", '"'))[VISITOR_HEADER]
    return client, page, token


def conversation_of(client_token_path, name="About my order", answer="It ships today."):
    """A conversation with one finished turn, owned by the visitor of that page."""
    client, _, token = client_token_path
    end_user = EndUser.objects.get(pk=client.session[next(k for k in client.session.keys())])
    conversation = Conversation.objects.create(
        workspace_id=end_user.workspace_id,
        app=end_user.app,
        end_user=end_user,
        from_source=FromSource.WEB_APP,
        name=name,
    )
    message = Message.objects.create(
        workspace_id=end_user.workspace_id,
        app=end_user.app,
        conversation=conversation,
        end_user=end_user,
        from_source=FromSource.WEB_APP,
        query="Where is my order?",
        answer=answer,
        status=MessageStatus.NORMAL,
    )
    return conversation, message


# --- Getting in ---------------------------------------------------------------------------------


def test_a_stranger_opens_the_public_chat_page(team):
    app = make_app(team, opening_statement="Hello! Ask me about orders.")
    app.config["suggested_questions"] = ["Where is my parcel?"]
    app.save(update_fields=["config"])
    _, page, token = visit(f"/chat/{app.site_code}")
    assert "chat app" in page and "Hello! Ask me about orders." in page
    assert 'data-suggestion="Where is my parcel?"' in page
    assert f'ws-connect="/ws/webapp/{app.site_code}/?visitor=' in page
    assert "django_htmx/ext/hx-ws-2" in page and "js/webapp.js" in page
    assert "No conversations yet." in page
    assert 'aria-label="Main"' not in page  # none of Orrery's own navigation
    assert EndUser.objects.get(app=app).source == EndUser.Source.BROWSER
    assert token


def test_the_same_browser_is_the_same_visitor(team):
    app = make_app(team)
    client, _, _ = visit(f"/chat/{app.site_code}")
    visit(f"/chat/{app.site_code}", client)
    visit(f"/chat/{app.site_code}")  # another browser
    assert EndUser.objects.filter(app=app).count() == 2


@pytest.mark.parametrize(
    "change",
    [{"enable_site": False}, {"site_code": "something-else"}],
    ids=["disabled", "regenerated"],
)
def test_a_disabled_or_replaced_link_is_not_found(team, change):
    app = make_app(team)
    code = app.site_code
    App.objects.filter(pk=app.pk).update(**change)
    assert Client().get(f"/chat/{code}").status_code == 404
    assert Client().get("/chat/no-such-code").status_code == 404


def test_each_link_opens_its_own_kind_of_page(team):
    chat, writer = make_app(team), make_app(team, mode="completion")
    response = Client().get(f"/completion/{chat.site_code}")
    assert response.status_code == 302 and response["Location"] == f"/chat/{chat.site_code}"
    response = Client().get(f"/chat/{writer.site_code}")
    assert response["Location"] == f"/completion/{writer.site_code}"


def test_a_members_only_app_asks_strangers_to_sign_in_and_refuses_outsiders(team, other_team):
    app = make_app(team)
    app.site_requires_login = True
    app.save(update_fields=["site_requires_login"])
    response = Client().get(f"/chat/{app.site_code}")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert other_team.client().get(f"/chat/{app.site_code}").status_code == 403
    member = team.client(Role.NORMAL)
    _, page, _ = visit(f"/chat/{app.site_code}", member)
    # A member is one visitor whatever browser they come from.
    visit(f"/chat/{app.site_code}", team.client(Role.NORMAL))
    assert EndUser.objects.filter(app=app).count() == 1
    assert EndUser.objects.get(app=app).user == team.members[Role.NORMAL].user


def test_only_these_pages_may_be_framed_by_other_sites(team):
    app = make_app(team)
    response = Client().get(f"/chat/{app.site_code}")
    assert "X-Frame-Options" not in response
    csp = response["Content-Security-Policy"]
    assert "frame-ancestors *" in csp and "script-src 'self'" in csp
    elsewhere = team.client().get("/apps/")
    assert elsewhere["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in elsewhere["Content-Security-Policy"]


# --- Conversations ------------------------------------------------------------------------------


def test_a_visitor_sees_their_conversations_and_answers_rendered(team):
    app = make_app(team)
    visited = visit(f"/chat/{app.site_code}")
    conversation, message = conversation_of(
        visited, answer="**Soon.** See [tracking](https://t.example)"
    )
    client, _, _ = visited
    page = client.get(f"/chat/{app.site_code}").content.decode()
    assert "About my order" in page
    page = client.get(f"/chat/{app.site_code}/conversations/{conversation.pk}").content.decode()
    assert "Where is my order?" in page
    assert "<strong>Soon.</strong>" in page
    assert 'rel="noopener noreferrer nofollow"' in page
    assert f"conversation={conversation.pk}" in page  # the socket follows this conversation


def test_an_answer_from_knowledge_lists_its_numbered_sources_escaped(team):
    app = make_app(team)
    visited = visit(f"/chat/{app.site_code}")
    conversation, message = conversation_of(visited, answer="It ships today [1].")
    message.retriever_resources = [
        {
            "position": 1,
            "dataset_name": "Shipping",
            "document_name": "orders.md",
            "content": "Orders <b>ship</b> within a day.",
            "score": 0.91,
        }
    ]
    message.save(update_fields=["retriever_resources"])
    client, _, _ = visited
    page = client.get(f"/chat/{app.site_code}/conversations/{conversation.pk}").content.decode()
    sources = page.split('data-testid="citations"')[1].split("</ol>")[0]
    assert "[1]" in sources and "orders.md" in sources and "Shipping" in sources
    assert "Orders &lt;b&gt;ship&lt;/b&gt; within a day." in sources


def test_a_visitor_cannot_open_someone_elses_conversation(team):
    app = make_app(team)
    conversation, message = conversation_of(visit(f"/chat/{app.site_code}"), name="Secret plans")
    stranger, page, token = visit(f"/chat/{app.site_code}")
    assert "Secret plans" not in page
    url = f"/chat/{app.site_code}/conversations/{conversation.pk}"
    assert stranger.get(url).status_code == 404
    headers = {VISITOR_HEADER: token}
    assert stranger.post(url + "/rename", {"name": "mine"}, headers=headers).status_code == 404
    assert stranger.post(url + "/delete", headers=headers).status_code == 404
    feedback = f"/chat/{app.site_code}/messages/{message.pk}/feedback"
    assert stranger.post(feedback, {"rating": "like"}, headers=headers).status_code == 404
    conversation.refresh_from_db()
    assert conversation.name == "Secret plans"
    assert not MessageFeedback.objects.exists()


def test_another_apps_link_does_not_open_this_apps_conversation(team, other_team):
    app = make_app(team)
    conversation, _ = conversation_of(visit(f"/chat/{app.site_code}"))
    foreign = make_app(other_team)
    client, _, _ = visit(f"/chat/{foreign.site_code}")
    url = f"/chat/{foreign.site_code}/conversations/{conversation.pk}"
    assert client.get(url).status_code == 404


def test_rename_and_delete_a_conversation(team):
    app = make_app(team)
    visited = visit(f"/chat/{app.site_code}")
    conversation, _ = conversation_of(visited)
    client, _, token = visited
    base = f"/chat/{app.site_code}/conversations/{conversation.pk}"
    headers = {VISITOR_HEADER: token, "HX-Request": "true"}
    response = client.post(base + "/rename", {"name": "  Parcel   to Oslo "}, headers=headers)
    assert response.status_code == 200
    assert "Parcel to Oslo" in response.content.decode()
    conversation.refresh_from_db()
    assert conversation.name == "Parcel to Oslo"
    blank = client.post(base + "/rename", {"name": "  "}, headers=headers)
    assert blank.status_code == 400

    page = client.get(base).content.decode()
    assert 'hx-confirm="Delete this conversation? Its messages are deleted too."' in page
    response = client.post(base + "/delete", {"current": str(conversation.pk)}, headers=headers)
    assert response.status_code == 204 and response["HX-Redirect"] == f"/chat/{app.site_code}"
    assert not Conversation.objects.exists() and not Message.objects.exists()


def test_writes_without_the_visitor_token_change_nothing(team):
    """Another site cannot make a visitor's browser post here: it cannot set the header."""
    app = make_app(team)
    visited = visit(f"/chat/{app.site_code}")
    conversation, _ = conversation_of(visited)
    client, _, _ = visited
    base = f"/chat/{app.site_code}/conversations/{conversation.pk}"
    assert client.post(base + "/rename", {"name": "hacked"}).status_code == 403
    assert client.post(base + "/delete", headers={VISITOR_HEADER: "forged"}).status_code == 403
    conversation.refresh_from_db()
    assert conversation.name == "About my order"


def test_like_dislike_with_a_comment_and_take_it_back(team):
    app = make_app(team)
    visited = visit(f"/chat/{app.site_code}")
    _, message = conversation_of(visited)
    client, _, token = visited
    url = f"/chat/{app.site_code}/messages/{message.pk}/feedback"
    headers = {VISITOR_HEADER: token, "HX-Request": "true"}
    response = client.post(url, {"rating": "like"}, headers=headers)
    assert 'aria-pressed="true"' in response.content.decode()
    assert MessageFeedback.objects.get().rating == "like"
    client.post(url, {"rating": "dislike", "content": "Wrong parcel"}, headers=headers)
    feedback = MessageFeedback.objects.get()
    assert (feedback.rating, feedback.content, feedback.from_source) == (
        "dislike",
        "Wrong parcel",
        "user",
    )
    client.post(url, {"rating": ""}, headers=headers)
    assert not MessageFeedback.objects.exists()
    assert client.post(url, {"rating": "love"}, headers=headers).status_code == 400


def test_many_conversations_come_in_pages(team):
    app = make_app(team)
    visited = visit(f"/chat/{app.site_code}")
    client, _, _ = visited
    end_user = EndUser.objects.get(app=app)
    Conversation.objects.bulk_create(
        Conversation(
            workspace=team.workspace, app=app, end_user=end_user, from_source="webapp", name=f"c{i}"
        )
        for i in range(52)
    )
    page = client.get(f"/chat/{app.site_code}").content.decode()
    assert page.count('class="conversation-link"') == 50
    assert '<a href="?page=2">Older conversations</a>' in page
    older = client.get(f"/chat/{app.site_code}", {"page": "2"}).content.decode()
    assert older.count('class="conversation-link"') == 2
    assert '<a href="?page=1">Newer</a>' in older and "Older conversations" not in older
    assert client.get(f"/chat/{app.site_code}", {"page": "x"}).status_code == 200


# --- Text generator -------------------------------------------------------------------------------


def test_the_text_generator_page_shows_its_input_form(team):
    app = make_app(team, mode="completion")
    app.config["user_input_form"] = [
        {"text-input": {"label": "Topic", "variable": "topic", "required": True, "max_length": 40}},
        {"select": {"label": "Tone", "variable": "tone", "options": ["calm", "bold"]}},
        {"paragraph": {"label": "Notes", "variable": "notes"}},
    ]
    app.save(update_fields=["config"])
    _, page, _ = visit(f"/completion/{app.site_code}")
    assert 'name="input_topic"' in page and 'maxlength="40"' in page
    assert '<option value="bold">bold</option>' in page
    assert '<textarea id="webapp-input_notes" name="input_notes"' in page
    assert "Nothing saved yet." in page and "Run a batch" in page


def test_save_and_remove_a_result(team):
    app = make_app(team, mode="completion")
    client, _, token = visit(f"/completion/{app.site_code}")
    end_user = EndUser.objects.get(app=app)
    message = Message.objects.create(
        workspace=team.workspace,
        app=app,
        end_user=end_user,
        from_source="webapp",
        answer="A *fine* poem",
        status="normal",
    )
    headers = {VISITOR_HEADER: token, "HX-Request": "true"}
    response = client.post(
        f"/completion/{app.site_code}/saved", {"message_id": str(message.pk)}, headers=headers
    )
    assert "<em>fine</em>" in response.content.decode()
    page = client.get(f"/completion/{app.site_code}").content.decode()
    assert "A <em>fine</em> poem" in page
    client.post(f"/completion/{app.site_code}/saved/{message.pk}/remove", headers=headers)
    assert not SavedMessage.objects.exists()
    # Someone else's result cannot be saved into one's list.
    stranger, _, stranger_token = visit(f"/completion/{app.site_code}")
    response = stranger.post(
        f"/completion/{app.site_code}/saved",
        {"message_id": str(message.pk)},
        headers={VISITOR_HEADER: stranger_token},
    )
    assert response.status_code == 404


def test_unknown_user_wording_is_escaped(team):
    app = make_app(team, opening_statement='<script>alert("x")</script>')
    app.name = "<img src=x onerror=alert(1)>"
    app.save(update_fields=["name"])
    _, page, _ = visit(f"/chat/{app.site_code}")
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;" in page


def test_a_stranger_signed_in_elsewhere_is_still_just_a_visitor(team, other_team):
    app = make_app(team)
    client, page, _ = visit(f"/chat/{app.site_code}", other_team.client())
    assert team.workspace.name not in page
    assert make_user  # the shared factory stays importable for other tests


@pytest.mark.parametrize("mode", ["chat", "completion"])
def test_web_app_pages_have_no_inline_script(team, mode):
    app = make_app(team, mode=mode)
    _, page, _ = visit(f"/{mode}/{app.site_code}")
    assert "<script>" not in page and "onclick=" not in page and "onsubmit=" not in page
    assert "js:" not in page  # no hx-vals/hx-on expressions evaluated as script


def test_a_flood_of_new_visitors_from_one_address_is_slowed_down(team, monkeypatch):
    from types import SimpleNamespace

    from apps.chat import visitors
    from apps.core import ratelimit

    monkeypatch.setattr(visitors, "NEW_VISITORS", 5)
    # One fixed-window minute for the whole test, whenever it runs.
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: 6_000_000.0))
    app = make_app(team)
    known, _, _ = visit(f"/chat/{app.site_code}")
    statuses = [Client().get(f"/chat/{app.site_code}").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    assert EndUser.objects.filter(app=app).count() == 5
    assert known.get(f"/chat/{app.site_code}").status_code == 200  # a known visitor gets in
