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


# --- Annotations ----------------------------------------------------------------------


def test_mark_a_message_as_an_annotation_with_an_edited_answer(team):
    from apps.chat.models import Annotation

    app = make_app(team)
    message = log(app, "How many moons has Mars?", "Three")
    client = team.client(Role.EDITOR)
    url = reverse("app_message_annotate", args=[app.id, message.id])
    refused = client.post(url, {"answer": ""})
    assert refused.status_code == 400 and b"This field is required" in refused.content
    client.post(url, {"answer": "Two: Phobos and Deimos."})
    annotation = Annotation.objects.get(app=app)
    assert (annotation.question, annotation.answer) == (
        "How many moons has Mars?",
        "Two: Phobos and Deimos.",
    )
    message.refresh_from_db()
    assert message.annotation_id == annotation.id
    client.post(url, {"answer": "Two."})  # marking again updates it
    assert Annotation.objects.get(app=app).answer == "Two."
    listing = client.get(reverse("app_annotations", args=[app.id]))
    assert (
        b"How many moons has Mars?" in listing.content
        and b"from a logged message" in listing.content
    )


def test_add_edit_search_and_delete_annotations(team):
    from apps.chat.models import Annotation

    app = make_app(team)
    client = team.client(Role.EDITOR)
    url = reverse("app_annotations", args=[app.id])
    empty = client.get(url)
    assert b"No annotations yet" in empty.content and b"Annotation reply is off" in empty.content
    assert client.post(url, {"question": "  ", "answer": "x"}).status_code == 400
    client.post(url, {"question": "Opening hours?", "answer": "Nine to five."})
    client.post(url, {"question": "Refunds?", "answer": "Within 30 days."})
    hours = Annotation.objects.get(app=app, question="Opening hours?")
    found = client.get(url, {"q": "refund"})
    assert found.content.count(b'data-testid="annotation"') == 1
    client.post(
        reverse("app_annotation_edit", args=[app.id, hours.id]),
        {"question": "Opening hours?", "answer": "Eight to six."},
    )
    hours.refresh_from_db()
    assert hours.answer == "Eight to six."
    client.post(reverse("app_annotation_delete", args=[app.id, hours.id]))
    assert not Annotation.objects.filter(pk=hours.pk).exists()


def test_an_annotation_of_another_app_is_not_found_here(team, other_team):
    from apps.chat.models import Annotation

    app, sibling = make_app(team), make_app(team, name="Sibling")
    theirs = Annotation.objects.create(
        workspace=team.workspace, app=sibling, question="q", answer="a"
    )
    client = team.client(Role.EDITOR)
    edit = client.post(
        reverse("app_annotation_edit", args=[app.id, theirs.id]),
        {"question": "changed", "answer": "changed"},
    )
    assert edit.status_code == 404
    delete = client.post(reverse("app_annotation_delete", args=[app.id, theirs.id]))
    assert delete.status_code == 404
    stranger = other_team.client(Role.OWNER)
    assert (
        stranger.post(reverse("app_annotation_delete", args=[sibling.id, theirs.id])).status_code
        == 404
    )
    assert Annotation.objects.get(pk=theirs.pk).question == "q"


def test_filter_to_one_conversation(team):
    app = make_app(team)
    first = log(app, "first question")
    Message.objects.create(
        workspace=app.workspace,
        app=app,
        conversation=first.conversation,
        from_source=FromSource.WEB_APP,
        query="follow-up question",
        status=MessageStatus.NORMAL,
    )
    log(app, "another conversation")
    client = team.client(Role.EDITOR)
    url = reverse("app_logs", args=[app.id])
    assert rows(client.get(url)) == 3
    only = client.get(url, {"conversation": str(first.conversation_id)})
    assert rows(only) == 2 and b"another conversation" not in only.content
    assert client.get(url, {"conversation": "nope"}).status_code == 400
