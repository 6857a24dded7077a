"""Turns orphaned by a server that died: the sweep (at worker boot, periodically and by
`manage.py sweep_orphaned_turns`) marks them interrupted, keeping the partial answer, and
leaves running turns alone."""

import time
from datetime import timedelta
from io import StringIO

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.utils import timezone

from apps.chat import generation, orphans
from apps.chat.models import Message, MessageStatus
from apps.core.offload import offload
from tests.chat.conftest import make_app
from tests.chat.test_webapp_pages import conversation_of, visit

pytestmark = pytest.mark.django_db(transaction=True)

LONG_AGO = timedelta(seconds=generation.ORPHAN_AFTER_SECONDS + 60)


def left_running(message: Message, *, age: timedelta) -> Message:
    """The message as a dead server left it: running, half written, started `age` ago."""
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.RUNNING,
        answer="It ships",
        error="",
        created_at=timezone.now() - age,
    )
    return Message.objects.get(pk=message.pk)


def test_the_command_marks_an_orphaned_turn_interrupted_and_its_page_says_so(team):
    app = make_app(team)
    visited = visit(f"/chat/{app.site_code}")
    conversation, message = conversation_of(visited)
    orphan = left_running(message, age=LONG_AGO)
    _, young = conversation_of(visited, name="Just asked")
    young = left_running(young, age=timedelta(seconds=5))

    out = StringIO()
    call_command("sweep_orphaned_turns", stdout=out)

    assert "1 orphaned turn(s)" in out.getvalue()
    orphan.refresh_from_db()
    assert orphan.status == MessageStatus.ERROR and orphan.error == generation.INTERRUPTED
    assert orphan.answer == "It ships"  # what was written is kept
    young.refresh_from_db()
    assert young.status == MessageStatus.RUNNING  # it may still be streaming somewhere
    client, _, _ = visited
    page = client.get(f"/chat/{app.site_code}/conversations/{conversation.pk}").content.decode()
    assert 'data-status="error"' in page and "Generating…" not in page
    assert "The answer was interrupted (the server restarted)." in page
    assert "It ships" in page


def test_a_turn_still_running_in_this_process_is_not_touched(chat_app, end_user, fake_openai):
    fake_openai.chunk_delay = 0.1  # streams for a second or so

    async def go():
        run = await generation.start(
            app=chat_app, from_source="api", query="one two three four five", end_user=end_user
        )
        backdate = Message.objects.filter(pk=run.message_id).update
        await offload(backdate)(created_at=timezone.now() - LONG_AGO)
        swept = await offload(orphans.orphaned_turns_sweep)()
        events = [event async for event in generation.events(run)]
        return run, swept, events

    run, swept, events = async_to_sync(go)()
    assert swept == 0
    assert isinstance(events[-1], generation.MessageEnd)
    message = Message.objects.get(pk=run.message_id)
    assert message.status == MessageStatus.NORMAL
    assert message.answer == "You said: one two three four five"


def test_every_worker_sweeps_when_it_boots(team, settings):
    settings.ORRERY_CHAT_ORPHAN_SWEEP_SECONDS = 3600
    app = make_app(team)
    _, message = conversation_of(visit(f"/chat/{app.site_code}"))
    orphan = left_running(message, age=LONG_AGO)
    middleware = orphans.OrphanSweepMiddleware()
    middleware.after_worker_boot(broker=None, worker=None)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            orphan.refresh_from_db()
            if orphan.status != MessageStatus.RUNNING:
                break
            time.sleep(0.05)
    finally:
        middleware.before_worker_shutdown(broker=None, worker=None)
    assert orphan.status == MessageStatus.ERROR and orphan.error == generation.INTERRUPTED


def test_a_sweep_interval_of_zero_turns_it_off(team, settings):
    settings.ORRERY_CHAT_ORPHAN_SWEEP_SECONDS = 0
    app = make_app(team)
    _, message = conversation_of(visit(f"/chat/{app.site_code}"))
    orphan = left_running(message, age=LONG_AGO)
    orphans.OrphanSweepMiddleware().after_worker_boot(broker=None, worker=None)
    time.sleep(0.3)
    orphan.refresh_from_db()
    assert orphan.status == MessageStatus.RUNNING
