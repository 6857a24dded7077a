"""Relaying a stream of events in batches of those that arrived together, in one task.

A model's tokens reach the server several to a network read when it is busy, and each
write to the client costs the same for one token as for five. So a relay writes, at
once, an event it had to wait for together with every event after it that is ready
without waiting (the rest of the same read), and only then waits again.

Asking an async iterator whether its next item is ready would normally mean a second
task feeding a queue, which costs a pass of the event loop per batch (the first token
included) and two wake-ups per event. Here the iterator's step is started by hand
instead: a step that finishes at once hands over its item; a step that has to wait is
kept (`_Step`) and awaited after the batch has gone out, exactly as if it had been
awaited in the first place."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator


async def ready_batches(events: AsyncIterator) -> AsyncIterator[list]:
    """Lists of events: one that was waited for, then all that were ready behind it.

    An error from the iterator comes after the events that arrived before it. Closing
    this generator cancels a step still waiting, so the iterator's cleanup runs (as
    when a task reading it is cancelled)."""
    iterator = aiter(events)
    waiting: _Step | None = None
    try:
        while True:
            step, waiting = waiting, None
            try:
                batch = [await (step or anext(iterator))]
            except StopAsyncIteration:
                return
            failure: Exception | None = None
            ended = False
            while True:
                started = iterator.__anext__()
                try:
                    blocked_on = started.send(None)
                except StopIteration as ready:
                    batch.append(ready.value)
                    continue
                except StopAsyncIteration:
                    ended = True
                except Exception as exc:
                    failure = exc
                else:
                    waiting = _Step(started, blocked_on)
                break
            yield batch
            if failure is not None:
                raise failure
            if ended:
                return
    finally:
        if waiting is not None:
            await waiting.cancel()


class _Step:
    """The rest of an iterator step that was started by hand and then had to wait on
    `blocked_on` (what a coroutine hands its task: a future, or None to yield once)."""

    def __init__(self, step, blocked_on) -> None:
        self.step, self.blocked_on = step, blocked_on

    def __await__(self):
        step, blocked_on = self.step, self.blocked_on
        while True:
            try:
                yield blocked_on  # the task waits on it, then resumes us
            except BaseException as exc:  # thrown in by the task: cancellation
                try:
                    blocked_on = step.throw(exc)
                except StopIteration as done:
                    return done.value
                continue
            try:
                blocked_on = step.send(None)
            except StopIteration as done:
                return done.value

    async def cancel(self) -> None:
        """Cancel the step as a task cancels a coroutine: its cleanup runs, and may wait."""
        try:
            blocked_on = self.step.throw(asyncio.CancelledError())
        except (StopIteration, StopAsyncIteration, asyncio.CancelledError):
            return
        try:
            await _Step(self.step, blocked_on)
        except (StopAsyncIteration, asyncio.CancelledError):
            pass
