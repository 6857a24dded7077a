"""An app's logs: every message with its usage and feedback, filtered by date, feedback and
text, paginated; a message's detail; only this app's messages, only for editors."""

import datetime as dt
from decimal import Decimal
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.chat.models import Conversation, FromSource, Message, MessageFeedback, MessageStatus
from apps.chat.services import apps as app_services
from apps.tenants.models import Role

pytestmark = pytest.mark.django_db


def make_app(team, name="Helpdesk"):
    return app_services.app_create(actor=team.members[Role.EDITOR], name=name, mode="chat")


def log(app, query, answer="An answer.", *, days_ago=0, rating=None, **fields):
    conversation = Conversation.objects.create(
        workspace=app.workspace, app=app, from_source=FromSource.WEB_APP, name=f"About {query}"
    )
    message = Message.objects.create(
        workspace=app.workspace,
        app=app,
        conversation=conversation,
        from_source=FromSource.WEB_APP,
        query=query,
        answer=answer,
        status=MessageStatus.NORMAL,
        model_provider="openai",
        model_name="gpt-4o-mini",
        message_tokens=12,
        answer_tokens=34,
        total_price=Decimal("0.0000123"),
        latency=1.25,
        first_token_latency=0.2,
        **fields,
    )
    if days_ago:
        Message.objects.filter(pk=message.pk).update(
            created_at=timezone.now() - dt.timedelta(days=days_ago)
        )
    if rating:
        MessageFeedback.objects.create(
            workspace=app.workspace, message=message, rating=rating, from_source="user"
        )
    return message


def rows(response) -> int:
    return response.content.count(b'data-testid="log-row"')


def test_an_app_without_messages_says_so(team):
    app = make_app(team)
    response = team.client(Role.EDITOR).get(reverse("app_logs", args=[app.id]))
    assert response.status_code == 200
    assert b'data-testid="logs-empty"' in response.content


def test_the_logs_show_usage_and_feedback(team):
    app = make_app(team)
    log(app, "Where is Saturn?", "Far away.", rating="like")
    response = team.client(Role.EDITOR).get(reverse("app_logs", args=[app.id]))
    page = unescape(response.content.decode())
    for text in ("Where is Saturn?", "Far away.", "gpt-4o-mini", "12 + 34", "0.000012", "1.25 s"):
        assert text in page, text
    assert "0.20 s" in page and "liked" in page


def test_filters_by_feedback_text_and_date(team):
    app = make_app(team)
    log(app, "liked question", rating="like")
    log(app, "disliked question", rating="dislike")
    log(app, "quiet question", answer="Mentions Jupiter")
    log(app, "old question", days_ago=10)
    client = team.client(Role.EDITOR)
    url = reverse("app_logs", args=[app.id])
    assert rows(client.get(url)) == 4
    assert rows(client.get(url, {"feedback": "like"})) == 1
    dislikes = client.get(url, {"feedback": "dislike"})
    assert rows(dislikes) == 1 and b"disliked question" in dislikes.content
    assert rows(client.get(url, {"feedback": "none"})) == 2
    jupiter = client.get(url, {"q": "jupiter"})
    assert rows(jupiter) == 1 and b"quiet question" in jupiter.content
    today = timezone.localdate()
    recent = client.get(url, {"start": (today - dt.timedelta(days=2)).isoformat()})
    assert rows(recent) == 3
    old = client.get(url, {"end": (today - dt.timedelta(days=5)).isoformat()})
    assert rows(old) == 1 and b"old question" in old.content
    assert b"Clear" in old.content


@pytest.mark.parametrize(
    "params",
    [
        {"start": "yesterday"},
        {"feedback": "love"},
        {"start": "2026-05-02", "end": "2026-05-01"},
        {"q": "x" * 500},
    ],
)
def test_bad_filters_are_form_errors(team, params):
    app = make_app(team)
    log(app, "a question")
    response = team.client(Role.EDITOR).get(reverse("app_logs", args=[app.id]), params)
    assert response.status_code == 400
    assert b'class="error"' in response.content


def test_pagination(team):
    app = make_app(team)
    for index in range(53):
        log(app, f"question {index}")
    client = team.client(Role.EDITOR)
    first = client.get(reverse("app_logs", args=[app.id]), {"q": "question"})
    assert rows(first) == 50 and b"Page 1 of 2" in first.content
    second = client.get(reverse("app_logs", args=[app.id]), {"q": "question", "page": 2})
    assert rows(second) == 3


def test_only_this_apps_messages(team, other_team):
    app, sibling = make_app(team), make_app(team, name="Sibling")
    foreign = make_app(other_team, name="Foreign")
    log(sibling, "sibling question")
    log(foreign, "foreign question")
    mine = log(app, "my question")
    page = team.client(Role.EDITOR).get(reverse("app_logs", args=[app.id])).content
    assert b"my question" in page
    assert b"sibling question" not in page and b"foreign question" not in page
    client = other_team.client(Role.OWNER)
    assert client.get(reverse("app_message", args=[app.id, mine.id])).status_code == 404
    other = log(sibling, "elsewhere")
    wrong_app = team.client(Role.EDITOR).get(reverse("app_message", args=[app.id, other.id]))
    assert wrong_app.status_code == 404


def test_a_message_detail_shows_the_conversation(team):
    app = make_app(team)
    first = log(app, "First question", "First answer")
    second = Message.objects.create(
        workspace=app.workspace,
        app=app,
        conversation=first.conversation,
        from_source=FromSource.WEB_APP,
        query="Second question",
        answer="Second answer",
        status=MessageStatus.NORMAL,
        model_provider="openai",
        model_name="gpt-4o-mini",
    )
    response = team.client(Role.EDITOR).get(reverse("app_message", args=[app.id, second.id]))
    page = response.content.decode()
    assert response.status_code == 200
    assert page.index("First question") < page.index("Second question")
    assert "openai/gpt-4o-mini" in page


def test_logs_are_for_editors(team):
    app = make_app(team)
    message = log(app, "q")
    for role in (Role.NORMAL, Role.DATASET_OPERATOR):
        client = team.client(role)
        assert client.get(reverse("app_logs", args=[app.id])).status_code == 403
        assert client.get(reverse("app_message", args=[app.id, message.id])).status_code == 403
