"""Every public web app route, asked with a visitor's own link but another visitor's (or
another workspace's) ids, or with another app's link: nothing is shown, nothing changes."""

import re

import pytest

from apps.chat.models import BatchRun, Conversation, EndUser, FromSource, Message
from tests.chat.conftest import make_app
from tests.chat.test_webapp_pages import visit
from tests.security.makers_chat import TOKEN_ROUTES
from tests.security.routes import all_routes

pytestmark = pytest.mark.django_db
WEBAPP_ROUTES = [r for r in all_routes() if r.startswith(("chat/<str:code>", "completion/<"))]
SECRET = "the victim's private words"


def test_every_web_app_route_is_listed_as_a_token_route():
    assert WEBAPP_ROUTES and set(WEBAPP_ROUTES) <= TOKEN_ROUTES


def _victim_objects(team, mode):
    app = make_app(team, mode=mode)
    client, _, _ = visit(f"/{mode}/{app.site_code}")
    end_user = EndUser.objects.get(app=app)
    conversation = Conversation.objects.create(
        workspace=team.workspace, app=app, end_user=end_user, from_source="webapp", name=SECRET
    )
    message = Message.objects.create(
        workspace=team.workspace,
        app=app,
        conversation=conversation if mode == "chat" else None,
        end_user=end_user,
        from_source=FromSource.WEB_APP,
        query=SECRET,
        answer=SECRET,
        status="normal",
    )
    batch = BatchRun.objects.create(
        workspace=team.workspace, app=app, end_user=end_user, rows=[{"q": SECRET}]
    )
    return (
        app,
        client,
        {
            "conversation_id": str(conversation.pk),
            "message_id": str(message.pk),
            "batch_id": str(batch.pk),
        },
    )


@pytest.mark.parametrize("mode", ["chat", "completion"])
@pytest.mark.parametrize("attacker", ["other-visitor", "other-workspace-app"])
def test_foreign_ids_and_foreign_links_get_nothing(team, other_team, mode, attacker):
    app, _, ids = _victim_objects(team, mode)
    if attacker == "other-visitor":
        code = app.site_code
    else:
        code = make_app(other_team, mode=mode).site_code
    client, _, token = visit(f"/{mode}/{code}")
    headers = {"X-Orrery-Visitor": token, "HX-Request": "true"}
    before = (Conversation.objects.get().name, Message.objects.count(), BatchRun.objects.count())
    failures = []
    for route in WEBAPP_ROUTES:
        if not route.startswith(mode) or not re.search(r"<uuid:", route):
            continue
        path = "/" + re.sub(
            r"<(?:\w+:)?(\w+)>", lambda m: code if m.group(1) == "code" else ids[m.group(1)], route
        )
        for method in ("get", "post"):
            response = getattr(client, method)(
                path, {"name": "x", "rating": "like"}, headers=headers
            )
            body = response.content.decode(errors="replace")
            if response.status_code not in (404, 405):
                failures.append(f"{method} {path}: {response.status_code}")
            if SECRET in body:
                failures.append(f"{method} {path}: shows the victim's words")
    assert not failures, failures
    assert (Conversation.objects.get().name, Message.objects.count(), BatchRun.objects.count()) == (
        before
    )


GARBAGE = {
    "name": "x" * 5000,
    "rating": "\x00like",
    "content": "y" * 5000,
    "message_id": "../../etc",
    "current": "not-a-uuid",
    "page": "-1",
}


@pytest.mark.parametrize("mode", ["chat", "completion"])
def test_garbage_input_gets_a_clear_refusal_never_a_server_error(team, mode):
    app, owner, own = _victim_objects(team, mode)  # the visitor's own objects this time
    client, _, token = visit(f"/{mode}/{app.site_code}", owner)
    failures = []
    for route in WEBAPP_ROUTES:
        if not route.startswith(mode):
            continue
        path = "/" + re.sub(
            r"<(?:\w+:)?(\w+)>",
            lambda m: app.site_code if m.group(1) == "code" else own[m.group(1)],
            route,
        )
        for method in ("get", "post", "put", "patch", "delete"):
            for headers in ({"X-Orrery-Visitor": token}, {"X-Orrery-Visitor": "garbage"}, {}):
                response = getattr(client, method)(path, GARBAGE, headers=headers)
                if response.status_code >= 500:
                    failures.append(f"{method} {path} {headers}: {response.status_code}")
    assert not failures, failures
