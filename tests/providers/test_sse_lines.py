"""SSE framing as providers send it, split across network reads at awkward places."""

import asyncio

import httpx
import pytest

from apps.providers.runtime.adapters.base import sse_events
from apps.providers.runtime.errors import InvokeConnectionError


class Pieces(httpx.AsyncByteStream):
    def __init__(self, pieces: list[bytes], fail: bool = False):
        self.pieces, self.fail = pieces, fail

    async def __aiter__(self):
        for piece in self.pieces:
            yield piece
        if self.fail:
            raise httpx.ReadError("connection reset")


def events(*pieces: bytes, fail: bool = False) -> list[tuple[str, str]]:
    async def read():
        response = httpx.Response(200, stream=Pieces(list(pieces), fail))
        return [event async for event in sse_events(response)]

    return asyncio.run(read())


def test_lf_crlf_and_cr_endings_split_anywhere():
    assert events(b"data: a\r", b"\ndata: b\r\n\r", b"\n") == [("message", "a\nb")]
    assert events(b"data: x\r\rdata: y\r", b"\r") == [("message", "x"), ("message", "y")]
    assert events(b"data: one\n", b"\ndata: two\n\n") == [("message", "one"), ("message", "two")]


def test_event_names_comments_and_a_last_line_without_a_break():
    assert events(b": keep-alive\n\nevent: delta\ndata: {}\n\n", b"data: tail") == [
        ("delta", "{}"),
        ("message", "tail"),
    ]


def test_a_character_split_between_reads_is_decoded_whole():
    text = "data: héllo 世界\n\n".encode()
    cut = text.index("世".encode()) + 1
    assert events(text[:cut], text[cut:]) == [("message", "héllo 世界")]


def test_a_stream_that_breaks_off_is_a_connection_error():
    with pytest.raises(InvokeConnectionError):
        events(b"data: a\n\n", b"data: b", fail=True)
