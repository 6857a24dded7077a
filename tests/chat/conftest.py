"""Chat fixtures: an app in `team`'s workspace whose model is OpenAI against the fake,
and a helper that runs one turn and collects its events."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync

from apps.chat import generation
from apps.chat.config import default_config
from apps.chat.models import EndUser
from apps.chat.services import apps as app_services
from apps.tenants.models import Role
from tests.providers.conftest import fake_openai, openai_ready  # noqa: F401,F811 - fixtures


def make_app(team, mode: str = "chat", **config_changes):
    config = default_config(mode, provider="openai", model="gpt-4o-mini")
    config.update(config_changes)
    return app_services.app_create(
        actor=team.members[Role.OWNER], name=f"{mode} app", mode=mode, config=config
    )


@pytest.fixture
def chat_app(openai_ready):  # noqa: F811 - the imported fixture
    return make_app(openai_ready, "chat", pre_prompt="You are terse.")


@pytest.fixture
def end_user(chat_app):
    return EndUser.objects.create(
        workspace=chat_app.workspace, app=chat_app, source="service_api", session_id="abc-123"
    )


def converse(app, **kwargs):
    """Start a turn and follow it to the end: (run, [events])."""
    kwargs.setdefault("from_source", "api")

    async def go():
        run = await generation.start(app=app, **kwargs)
        return run, [event async for event in generation.events(run)]

    return async_to_sync(go)()


def answer_of(events) -> str:
    text = ""
    for event in events:
        if isinstance(event, generation.AnswerChunk):
            text += event.answer
        elif isinstance(event, generation.AnswerReplaced):
            text = event.answer
    return text
