"""Reading busy streams in bigger pieces.

A model sends its answer a token at a time, and each network read of a stream costs the
same whether it brings one token or five (the wake-up, the HTTP layers, the write to the
client that follows). With many answers streaming at once, reading each one a little less
often lets its tokens gather in the socket, so the process spends its CPU on tokens rather
than on reads. The first token is never held back, and a quiet process reads at once."""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from contextvars import ContextVar

TURNS_PER_PASS = 8  # paced reads resumed per event-loop pass (see _Turns)
QUIET_STREAMS = 16  # up to this many answers at once, every read happens at once
READS_PER_SECOND = 4000  # all answers together read about this often, at most
LONGEST_PAUSE = 0.05  # seconds a read of one answer waits, at most

_flowing = 0  # answers in this process past their first token
_paced: ContextVar[bool] = ContextVar("paced_stream", default=False)


def stream_flowing() -> None:
    """The stream read in this task has sent its first token: its reads may wait."""
    global _flowing
    if not _paced.get():
        _flowing += 1
        _paced.set(True)


def stream_ended() -> None:
    global _flowing
    if _paced.get():
        _flowing -= 1
        _paced.set(False)


def read_pause() -> float:
    """Seconds to wait before this task's next read of its stream (0: read now)."""
    if not _paced.get() or _flowing <= QUIET_STREAMS:
        return 0.0
    return min(LONGEST_PAUSE, _flowing / READS_PER_SECOND)


async def wait_to_read() -> None:
    """Wait before this task's next read of its stream, if it should (see read_pause)."""
    if pause := read_pause():
        await asyncio.sleep(pause)
        await _turns_of(asyncio.get_running_loop()).take()


class _Turns:
    """Streams whose pauses end together would all read in one pass of the event loop,
    and a new request or a first token that arrives meanwhile would wait behind all of
    them. Resumed a few per pass instead, they let the loop look at its sockets in
    between, so new work waits for a few reads at most."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiting: deque[asyncio.Future] = deque()
        self.releasing = False

    async def take(self) -> None:
        turn = self.loop.create_future()
        self.waiting.append(turn)
        if not self.releasing:
            self.releasing = True
            self.loop.call_soon(self._release)
        await turn

    def _release(self) -> None:
        released = 0
        while self.waiting and released < TURNS_PER_PASS:
            turn = self.waiting.popleft()
            if not turn.done():  # its stream may have been cancelled meanwhile
                turn.set_result(None)
                released += 1
        if self.waiting:
            self.loop.call_soon(self._release)
        else:
            self.releasing = False


_turns: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # one per event loop


def _turns_of(loop: asyncio.AbstractEventLoop) -> _Turns:
    turns = _turns.get(loop)
    if turns is None:
        turns = _turns[loop] = _Turns(loop)
    return turns
