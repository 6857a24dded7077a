"""Reading busy streams in bigger pieces.

A model sends its answer a token at a time, and each network read of a stream costs the
same whether it brings one token or five (the wake-up, the HTTP layers, the write to the
client that follows). With many answers streaming at once, reading each one a little less
often lets its tokens gather in the socket, so the process spends its CPU on tokens rather
than on reads. The first token is never held back, and a quiet process reads at once."""

from __future__ import annotations

from contextvars import ContextVar

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
