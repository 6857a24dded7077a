"""Following a run from another process (shared mode: channel layer + cache), stopping
it through the shared flag, and the SSE keep-alive."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from django.core.cache import cache

from apps.chat import generation, service_api
from apps.chat.generation import fanout
from apps.chat.models import Message, MessageStatus
from tests.chat.conftest import answer_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shared(monkeypatch):
    """As with REDIS_URL set: the in-memory channel layer and cache stand in for Redis."""
    monkeypatch.setattr(fanout, "shared", lambda: True)


def test_a_watcher_in_another_process_catches_up_and_follows(chat_app, fake_openai, shared):
    fake_openai.chunk_delay = 0.05
    query = "one two three four five six"

    async def go():
        run = await generation.start(app=chat_app, query=query, from_source="api")
        local = []

        async def watch():
            async for event in generation.events(run):
                local.append(event)

        watching = asyncio.create_task(watch())
        while len(local) < 3:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # let a batch reach the cache

        async def saved():
            return None  # as seen from elsewhere: still running

        remote = [e async for e in fanout.follow_remote(run.task_id, saved)]
        await watching
        return local, remote

    local, remote = async_to_sync(go)()
    assert answer_of(remote) == answer_of(local) == f"You said: {query}"
    assert isinstance(remote[-1], generation.MessageEnd)


def test_a_stop_from_another_process_reaches_the_run(chat_app, fake_openai, shared):
    fake_openai.chunk_delay = 0.05

    async def go():
        run = await generation.start(app=chat_app, query=" ".join(["word"] * 40), from_source="api")
        events = []
        async for event in generation.events(run):
            events.append(event)
            if len(events) == 2:  # another process sets the flag only
                await cache.aset(fanout._stop_key(run.task_id), 1)
        return run, events

    run, events = async_to_sync(go)()
    assert events[-1].status == "stopped"
    assert Message.objects.get(pk=run.message_id).status == MessageStatus.STOPPED


def test_a_quiet_stream_sends_dify_pings(monkeypatch):
    monkeypatch.setattr(service_api, "PING_INTERVAL", 0.05)
    run = fanout.Run(task_id="t", message_id="m", conversation_id="c", mode="chat")

    async def slow():
        await asyncio.sleep(0.18)
        yield generation.AnswerChunk("hi")
        yield generation.MessageEnd(status="normal", answer="hi", metadata={})
        yield generation.SuggestedQuestions(["never sent"])

    async def go():
        return b"".join([frame async for frame in service_api.sse_frames(run, slow())])

    body = async_to_sync(go)().decode()
    assert body.startswith("event: ping\n\nevent: ping\n\n")
    assert body.count('data: {"event": "message"') == 1
    assert body.endswith("\n\n") and '"event": "message_end"' in body
    assert "never sent" not in body
