"""The studio's preview socket: editors of the app's workspace only; it runs the
configuration sent from the page, unsaved, and refuses one that a save would refuse."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from apps.chat.config import default_config
from apps.chat.debug_consumer import StudioDebugConsumer
from apps.chat.models import Conversation, FromSource, Message
from apps.chat.services import apps as app_services
from apps.tenants.models import Role
from tests.providers.conftest import fake_openai, openai_ready  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def app(openai_ready):  # noqa: F811 - the imported fixture
    config = default_config("chat", provider="openai", model="gpt-4o-mini")
    return app_services.app_create(
        actor=openai_ready.members[Role.EDITOR], name="Preview me", mode="chat", config=config
    )


def page_form(**changes) -> dict:
    """What the htmx ws extension sends: the preview's form plus the config form."""
    data = {
        "action": "send",
        "conversation_id": "",
        "query": "is this forbidden?",
        "model": "openai/gpt-4o-mini",
        "pre_prompt": "You are terse.",
        "annotation_score_threshold": "0.9",
        "HEADERS": {},
    }
    data.update(changes)
    return data


def talk(
    user, app_id, messages: list[dict], *, until: str = 'data-status="normal"', query: str = ""
):
    """Connect as `user` (with `query`, e.g. "conversation=<id>"), send each message,
    collect frames until `until` shows up. Returns (connected, frames)."""

    async def go():
        communicator = WebsocketCommunicator(
            StudioDebugConsumer.as_asgi(), f"/ws/studio/{app_id}/debug/?{query}"
        )
        communicator.scope["user"] = user
        communicator.scope["url_route"] = {"kwargs": {"app_id": str(app_id)}}
        connected, _ = await communicator.connect(timeout=10)
        frames: list[str] = []
        if connected and messages:
            for message in messages:
                await communicator.send_to(text_data=json.dumps(message))
            while not any(until in frame for frame in frames):
                frames.append(await communicator.receive_from(timeout=20))
        await communicator.disconnect()
        return connected, frames

    return async_to_sync(go)()


def test_only_editors_of_the_workspace_connect(app, openai_ready, other_team):  # noqa: F811
    for role, allowed in (
        (Role.EDITOR, True),
        (Role.NORMAL, False),
        (Role.DATASET_OPERATOR, False),
    ):
        connected, _ = talk(openai_ready.members[role].user, app.id, [])
        assert connected is allowed, role
    stranger, _ = talk(other_team.owner, app.id, [])
    assert stranger is False
    malformed, _ = talk(openai_ready.members[Role.OWNER].user, "not-an-id", [])
    assert malformed is False


def test_the_preview_runs_the_unsaved_configuration(app, openai_ready):  # noqa: F811
    editor = openai_ready.members[Role.EDITOR].user
    unsaved = page_form(
        moderation_enabled="true",
        moderation_type="keywords",
        moderation_keywords="forbidden",
        moderation_inputs_enabled="true",
        moderation_inputs_preset="Not here, please.",
    )
    connected, frames = talk(editor, app.id, [unsaved])
    assert connected
    text = "".join(frames)
    assert "Not here, please." in text and "You said" not in text
    app.refresh_from_db()
    assert app.config["sensitive_word_avoidance"]["enabled"] is False  # nothing was saved
    message = Message.objects.get(app=app)
    assert message.from_source == FromSource.DEBUGGER and message.user == editor

    # The same question with the saved configuration reaches the model.
    _, frames = talk(editor, app.id, [page_form()])
    assert "You said: is this forbidden?" in "".join(frames)


def test_a_configuration_a_save_would_refuse_is_not_run(app, openai_ready):  # noqa: F811
    editor = openai_ready.members[Role.EDITOR].user
    bad = page_form(pre_prompt="About {{planet}}")
    connected, frames = talk(editor, app.id, [bad], until="chat-error")
    assert connected
    assert "The preview cannot run this configuration" in frames[-1]
    assert "{{planet}}" in frames[-1]
    assert not Message.objects.filter(app=app).exists()


def test_a_text_generator_previews_with_its_inputs(openai_ready):  # noqa: F811
    config = default_config("completion", provider="openai", model="gpt-4o-mini")
    app = app_services.app_create(
        actor=openai_ready.members[Role.EDITOR], name="Writer", mode="completion", config=config
    )
    form = page_form(
        query="",
        pre_prompt="Write about {{topic}}",
        **{
            "var-0-type": "text-input",
            "var-0-variable": "topic",
            "var-0-label": "Topic",
            "input_topic": "comets",
        },
    )
    connected, frames = talk(openai_ready.members[Role.EDITOR].user, app.id, [form])
    assert connected
    text = "".join(frames)
    assert 'id="completion-result"' in text
    assert "You said: Write about comets" in text


def test_each_member_previews_in_conversations_of_their_own(app, openai_ready):  # noqa: F811
    editor = openai_ready.members[Role.EDITOR].user
    owner = openai_ready.members[Role.OWNER].user
    talk(editor, app.id, [page_form(query="my secret plan")])
    mine = Conversation.objects.get(app=app)
    assert mine.user == editor and mine.from_source == FromSource.DEBUGGER

    # Another member of the workspace can neither follow it nor go on in it.
    connected, _ = talk(owner, app.id, [], query=f"conversation={mine.pk}")
    assert connected is False
    intrude = page_form(query="me too", conversation_id=str(mine.pk))
    connected, frames = talk(owner, app.id, [intrude], until="chat-error")
    assert connected and "No such conversation." in frames[-1]
    assert list(mine.messages.values_list("query", flat=True)) == ["my secret plan"]

    # Their own preview is a conversation of theirs; mine goes on for me.
    talk(owner, app.id, [page_form(query="hello")])
    theirs = Conversation.objects.exclude(pk=mine.pk).get(app=app)
    assert theirs.user == owner
    connected, _ = talk(editor, app.id, [], query=f"conversation={mine.pk}")
    assert connected is True
    _, frames = talk(editor, app.id, [page_form(query="go on", conversation_id=str(mine.pk))])
    assert "You said: go on" in "".join(frames)
    assert mine.messages.count() == 2
