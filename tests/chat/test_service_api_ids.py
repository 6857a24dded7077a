"""Unknown and malformed ids on the Service API are "not found", never a 500, and ids
the server decides cannot be chosen in a body."""

import uuid

import pytest
from django.test import Client

from apps.chat import keys
from apps.chat.models import App, EndUser, Message
from apps.tenants.models import Role
from tests.chat.conftest import make_app

pytestmark = pytest.mark.django_db(transaction=True)

ROUTES = [
    ("post", "/v1/chat-messages/{}/stop"),
    ("post", "/v1/completion-messages/{}/stop"),
    ("post", "/v1/conversations/{}/name"),
    ("delete", "/v1/conversations/{}"),
    ("post", "/v1/messages/{}/feedbacks"),
    ("get", "/v1/messages/{}/suggested"),
]


@pytest.fixture
def client(openai_ready):
    app = make_app(openai_ready, "chat", suggested_questions_after_answer={"enabled": True})
    EndUser.objects.create(workspace=app.workspace, app=app, source="service_api", session_id="u")
    raw = keys.app_api_key_create(actor=openai_ready.members[Role.OWNER], app=app)[1]
    return Client(headers={"Authorization": f"Bearer {raw}"})


@pytest.mark.parametrize("bad_id", [str(uuid.uuid4()), "not-a-uuid"], ids=["unknown", "malformed"])
def test_unknown_and_malformed_ids_are_not_found(client, bad_id):
    for method, route in ROUTES:
        path = route.format(bad_id) + "?user=u"
        response = getattr(client, method)(
            path, {"user": "u", "name": "x"}, content_type="application/json"
        )
        assert response.status_code == 404, (method, path, response.content)
        assert response.json()["status"] == 404


def test_a_body_cannot_pick_the_app_workspace_or_message_id(client, other_team):
    theirs = make_app(other_team, "chat")
    response = client.post(
        "/v1/chat-messages",
        {
            "inputs": {},
            "query": "hello",
            "user": "u",
            "app_id": str(theirs.id),
            "workspace_id": str(other_team.workspace.id),
            "id": str(uuid.uuid4()),
            "task_id": str(uuid.uuid4()),
        },
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    message = Message.objects.get(pk=response.json()["message_id"])
    assert message.app != theirs and message.workspace_id != other_team.workspace.id
    assert str(message.task_id) == response.json()["task_id"]
    assert not App.objects.get(pk=theirs.pk).messages.exists()
