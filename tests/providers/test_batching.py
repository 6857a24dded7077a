"""ready_batches: events that arrive together go out together, from one task."""

import asyncio
from contextlib import aclosing

import pytest

from apps.providers.batching import ready_batches


class Upstream:
    """An event source: bursts of events with a wait between bursts, like network reads."""

    def __init__(self, *bursts: list, fail: Exception | None = None):
        self.bursts, self.fail = bursts, fail
        self.cleaned_up = False
        self.tasks: set = set()

    async def events(self):
        try:
            for burst in self.bursts:
                await asyncio.sleep(0.005)  # the next read
                for event in burst:
                    self.tasks.add(asyncio.current_task())
                    yield event
            if self.fail:
                raise self.fail
        finally:
            await asyncio.sleep(0)  # cleanup that itself waits, like recording usage
            self.cleaned_up = True


async def _collect(upstream: Upstream) -> list:
    async with aclosing(ready_batches(upstream.events())) as batches:
        return [batch async for batch in batches]


def test_events_of_one_read_go_together_and_each_read_is_its_own_batch():
    upstream = Upstream(["a", "b", "c"], ["d"], ["e", "f"])
    assert asyncio.run(_collect(upstream)) == [["a", "b", "c"], ["d"], ["e", "f"]]
    assert upstream.cleaned_up


def test_the_reader_runs_in_the_callers_task():
    async def run():
        upstream = Upstream(["a"], ["b"])
        await _collect(upstream)
        return upstream.tasks == {asyncio.current_task()}

    assert asyncio.run(run())


def test_an_error_comes_after_the_events_that_arrived_before_it():
    upstream = Upstream(["a", "b"], ["c"], fail=ValueError("cut off"))
    seen = []

    async def run():
        async with aclosing(ready_batches(upstream.events())) as batches:
            async for batch in batches:
                seen.append(batch)

    with pytest.raises(ValueError, match="cut off"):
        asyncio.run(run())
    assert seen == [["a", "b"], ["c"]]
    assert upstream.cleaned_up


def test_closing_early_cancels_the_waiting_read_and_lets_it_clean_up():
    upstream = Upstream(["a"], ["b"], ["c"])

    async def first_batch_only():
        async with aclosing(ready_batches(upstream.events())) as batches:
            async for batch in batches:
                return batch

    assert asyncio.run(first_batch_only()) == ["a"]
    assert upstream.cleaned_up


def test_cancelling_the_reader_while_it_waits_lets_the_source_clean_up():
    upstream = Upstream(["a"], ["b"], ["c"])

    async def run():
        reader = asyncio.create_task(_collect(upstream))
        await asyncio.sleep(0.008)  # after the first batch, during the wait for the next
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader

    asyncio.run(run())
    assert upstream.cleaned_up


def test_the_same_on_uvloop_the_servers_event_loop():
    import uvloop

    upstream = Upstream(["a", "b"], ["c"])
    assert uvloop.run(_collect(upstream)) == [["a", "b"], ["c"]]
    assert upstream.cleaned_up
