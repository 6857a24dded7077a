"""Chat fixtures: an app in `team`'s workspace whose model is OpenAI against the fake,
a second, OpenAI-compatible model on a fake of its own to make fail, and a helper that
runs one turn and collects its events."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync

from apps.chat import generation
from apps.chat.config import default_config
from apps.chat.models import EndUser
from apps.chat.services import apps as app_services
from apps.providers import services as provider_services
from apps.tenants.models import Role
from tests.fakes.openai import FakeOpenAI, openai_error
from tests.providers.conftest import (  # noqa: F401,F811 - fixtures
    FAKE_KEY,
    fake_openai,
    openai_ready,
)

FLAKY_MODEL = "flaky-llm"
FLAKY = {"provider": "openai_api_compatible", "name": FLAKY_MODEL}


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
def ready(team):
    """`team` with OpenAI set up (not called: the studio's pages only list its models)."""
    provider_services.provider_credentials_save(
        actor=team.members[Role.OWNER],
        provider="openai",
        credentials={"openai_api_key": "sk-studio-test"},
        validate=False,
    )
    return team


@pytest.fixture
def flaky_upstream(openai_ready):  # noqa: F811 - the imported fixture
    """The fake behind openai_api_compatible/flaky-llm, set up in `team`'s workspace beside
    OpenAI (validated for real). It answers until a test queues failures (fail_with)."""
    with FakeOpenAI(api_key=FAKE_KEY, models=(FLAKY_MODEL,)) as fake:
        provider_services.custom_model_save(
            actor=openai_ready.members[Role.OWNER],
            provider=FLAKY["provider"],
            model_type="llm",
            model=FLAKY_MODEL,
            credentials={
                "endpoint_url": fake.url + "/v1",
                "api_key": FAKE_KEY,
                "mode": "chat",
                "context_size": "8192",
            },
        )
        yield fake


def fail_with(fake, status: int, times: int = 20) -> None:
    """Make every chat call to the fake fail with `status`, as the real API words it."""
    fake.queue(*[openai_error(status)] * times)


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
