"""Busy streams are read in bigger pieces; a quiet process, and every first token, never
wait."""

import asyncio
import contextvars

from apps.providers.runtime import pacing


def _flowing_streams(count: int) -> list[contextvars.Context]:
    """`count` streams past their first token, each in a task context of its own."""
    contexts = [contextvars.copy_context() for _ in range(count)]
    for context in contexts:
        context.run(pacing.stream_flowing)
    return contexts


def test_a_quiet_process_reads_every_stream_at_once():
    streams = _flowing_streams(pacing.QUIET_STREAMS)
    try:
        assert all(context.run(pacing.read_pause) == 0 for context in streams)
    finally:
        for context in streams:
            context.run(pacing.stream_ended)


def test_a_busy_process_spaces_reads_but_never_before_a_first_token():
    streams = _flowing_streams(200)
    try:
        pause = streams[0].run(pacing.read_pause)
        assert 0 < pause <= pacing.LONGEST_PAUSE
        # A stream still waiting for its first token reads at once.
        assert contextvars.copy_context().run(pacing.read_pause) == 0
    finally:
        for context in streams:
            context.run(pacing.stream_ended)
    assert pacing._flowing == 0


def test_a_stream_counts_once_however_often_it_is_marked():
    context = contextvars.copy_context()
    for _ in range(3):
        context.run(pacing.stream_flowing)
    assert pacing._flowing == 1
    context.run(pacing.stream_ended)
    context.run(pacing.stream_ended)
    assert pacing._flowing == 0


def test_new_work_waits_for_a_few_paced_reads_not_for_all_of_them():
    """Sixty streams whose pauses end together; a request arrives as the first reads.
    It must not wait until all sixty have read."""

    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        turns = pacing._turns_of(loop)
        order: list[str] = []

        async def paced_read():
            await asyncio.sleep(0.01)
            await turns.take()
            order.append("paced read")
            if len(order) == 1:
                loop.call_soon(order.append, "new request")

        await asyncio.gather(*(paced_read() for _ in range(60)))
        return order

    order = asyncio.run(scenario())
    assert order.count("paced read") == 60
    assert order.index("new request") < 20  # a pass or two of reads, not all sixty
