"""Conversations and messages: Dify's pagination, rename and naming by the model,
feedback, annotations and marking a message as one."""

import pytest
from asgiref.sync import async_to_sync

from apps.chat.models import Annotation, Conversation, EndUser, Message, MessageFeedback
from apps.chat.services import conversations, messages
from apps.core.errors import DomainError, NotFound, PermissionDenied
from apps.tenants.models import Role
from tests.chat.conftest import make_app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def app(openai_ready):
    return make_app(openai_ready, "chat")


def person(app, name="u") -> EndUser:
    return EndUser.objects.create(
        workspace=app.workspace, app=app, source="service_api", session_id=name
    )


def thread(app, end_user, count: int) -> Conversation:
    conversation = Conversation.objects.create(
        workspace=app.workspace, app=app, end_user=end_user, from_source="api"
    )
    for i in range(count):
        Message.objects.create(
            workspace=app.workspace,
            app=app,
            conversation=conversation,
            end_user=end_user,
            from_source="api",
            query=f"q{i}",
            answer=f"a{i}",
            status="normal",
        )
    return conversation


def test_messages_page_backwards_from_first_id(app):
    user = person(app)
    conversation = thread(app, user, 5)
    newest, more = messages.message_list(
        app=app, end_user=user, conversation_id=conversation.id, limit=2
    )
    assert [m.query for m in newest] == ["q3", "q4"] and more
    older, more = messages.message_list(
        app=app, end_user=user, conversation_id=conversation.id, first_id=newest[0].id, limit=2
    )
    assert [m.query for m in older] == ["q1", "q2"] and more
    oldest, more = messages.message_list(
        app=app, end_user=user, conversation_id=conversation.id, first_id=older[0].id, limit=2
    )
    assert [m.query for m in oldest] == ["q0"] and not more
    with pytest.raises(DomainError, match="limit"):
        messages.message_list(app=app, end_user=user, conversation_id=conversation.id, limit=101)
    with pytest.raises(NotFound):
        messages.message_list(app=app, end_user=person(app, "x"), conversation_id=conversation.id)


def test_conversations_page_after_last_id_in_the_chosen_order(app):
    user = person(app)
    made = [thread(app, user, 1) for _ in range(3)]
    page, more = conversations.conversation_list(app=app, end_user=user, limit=2)
    assert [c.id for c in page] == [made[2].id, made[1].id] and more
    page, more = conversations.conversation_list(
        app=app, end_user=user, limit=2, last_id=page[-1].id
    )
    assert [c.id for c in page] == [made[0].id] and not more
    page, _ = conversations.conversation_list(app=app, end_user=user, sort_by="created_at")
    assert page[0].id == made[0].id
    with pytest.raises(DomainError, match="sort_by"):
        conversations.conversation_list(app=app, end_user=user, sort_by="name")


def test_rename_and_let_the_model_name_it(app):
    user = person(app)
    conversation = thread(app, user, 1)
    renamed = conversations.conversation_rename(
        app=app, end_user=user, conversation_id=conversation.id, name="  Trip   plans "
    )
    assert renamed.name == "Trip plans"
    with pytest.raises(DomainError):
        conversations.conversation_rename(
            app=app, end_user=user, conversation_id=conversation.id, name=" "
        )
    name = async_to_sync(conversations.conversation_name_generate)(
        app=app, conversation=conversation
    )
    assert name.startswith("You said:")  # the fake model's title
    conversation.refresh_from_db()
    assert conversation.name == name


def test_feedback_from_the_end_user_and_from_a_member(app, team):
    user = person(app)
    message = thread(app, user, 1).messages.get()
    messages.message_feedback(
        app=app, message_id=message.id, rating="dislike", content="wrong", end_user=user
    )
    messages.message_feedback(
        app=app, message_id=message.id, rating="like", actor=team.members[Role.NORMAL]
    )
    assert sorted(MessageFeedback.objects.values_list("from_source", "rating")) == [
        ("admin", "like"),
        ("user", "dislike"),
    ]
    with pytest.raises(NotFound):
        messages.message_feedback(
            app=app, message_id=message.id, rating="like", end_user=person(app, "other")
        )
    with pytest.raises(DomainError, match="rating"):
        messages.message_feedback(app=app, message_id=message.id, rating="meh", end_user=user)


def test_annotations_are_for_builders_and_a_message_can_become_one(app, team):
    editor, normal = team.members[Role.EDITOR], team.members[Role.NORMAL]
    message = thread(app, person(app), 1).messages.get()
    with pytest.raises(PermissionDenied):
        messages.annotation_create(actor=normal, app=app, question="q", answer="a")
    note = messages.message_annotate(actor=editor, app=app, message_id=message.id, answer="Better")
    assert (note.question, note.answer) == ("q0", "Better")
    message.refresh_from_db()
    assert message.annotation_id == note.id
    again = messages.message_annotate(actor=editor, app=app, message_id=message.id, answer="Best")
    assert again.id == note.id and Annotation.objects.get().answer == "Best"
    messages.annotation_delete(actor=editor, app=app, annotation_id=note.id)
    assert not Annotation.objects.exists()


def test_another_workspaces_annotation_is_not_found(app, other_team):
    theirs = make_app(other_team, "chat")
    note = messages.annotation_create(
        actor=other_team.members[Role.OWNER], app=theirs, question="q", answer="a"
    )
    with pytest.raises(NotFound):
        messages.annotation_get(app=app, annotation_id=note.id)
