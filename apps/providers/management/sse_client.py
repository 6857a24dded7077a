"""A lean HTTP/1.1 client for streamed chat completions, for the gateway benchmark.

A general client (httpx) spends tens of microseconds of Python per received piece of a
stream; with 64 streams on a small machine the benchmark then measures mostly itself, and
unevenly so: it costs more on whichever side sends in smaller pieces. This one does the
least the measurement needs: keep-alive connections, chunked framing, SSE `data:` lines,
one JSON parse per line. It is the same client for the direct and the gateway runs."""

from __future__ import annotations

import asyncio
import socket
import time
from urllib.parse import urlsplit

import orjson


class StreamFailed(Exception):
    pass


class SSEClient:
    def __init__(self, url: str, key: str):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.head = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            "Accept: text/event-stream\r\n"
        ).encode()
        self.idle: list[_Connection] = []

    async def stream(self, body: dict) -> tuple[float | None, float, int]:
        """(seconds to the first content delta, seconds to the end, content deltas)."""
        payload = orjson.dumps(body)
        request = self.head + b"Content-Length: %d\r\n\r\n" % len(payload) + payload
        connection = self.idle.pop() if self.idle else await self._connect()
        started = time.perf_counter()
        response = connection.send(request, started)
        await response
        if connection.reusable:
            self.idle.append(connection)
        else:
            connection.close()
        return response.result()

    async def open(self, count: int) -> None:
        """Open `count` keep-alive connections one after another (a burst of connects
        would overflow a small listen backlog and wait for SYN retransmits)."""
        while len(self.idle) < count:
            self.idle.append(await self._connect())

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_Connection, self.host, self.port)
        return connection

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


class _Connection(asyncio.Protocol):
    transport: asyncio.Transport

    def __init__(self):
        self.reusable = False
        self.future: asyncio.Future | None = None

    def connection_made(self, transport):
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc):
        self.reusable = False
        self._fail(StreamFailed(f"connection lost: {exc}"))

    def close(self):
        self.transport.close()

    def send(self, request: bytes, started: float) -> asyncio.Future:
        self.future = asyncio.get_running_loop().create_future()
        self.started, self.ttft, self.deltas = started, None, 0
        self.buffer, self.head_done, self.status = b"", False, 0
        self.chunk_left, self.sse = -1, b""
        self.reusable = False
        self.transport.write(request)
        return self.future

    def _fail(self, exc: Exception):
        if self.future is not None and not self.future.done():
            self.future.set_exception(exc)

    def data_received(self, data: bytes):
        self.buffer += data
        if not self.head_done:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head, self.buffer = self.buffer[:end].lower(), self.buffer[end + 4 :]
            self.status = int(self.head[9:12])
            self.head_done = True
        if b"transfer-encoding: chunked" in self.head:
            self._chunks()
        elif len(self.buffer) >= _content_length(self.head):  # an error, answered whole
            self._fail(StreamFailed(f"{self.status}: {self.buffer[:500]!r}"))
            self.transport.close()

    def _chunks(self):
        """Chunked transfer coding: `<hex size>\\r\\n<data>\\r\\n`, ending with size 0."""
        buffer = self.buffer
        while True:
            if self.chunk_left < 0:
                line_end = buffer.find(b"\r\n")
                if line_end < 0:
                    break
                size = int(buffer[:line_end].split(b";")[0], 16)
                buffer = buffer[line_end + 2 :]
                if size == 0:
                    self.buffer = b""
                    self._finish()
                    return
                self.chunk_left = size
            if len(buffer) < self.chunk_left + 2:
                break
            self._body(buffer[: self.chunk_left])
            buffer = buffer[self.chunk_left + 2 :]
            self.chunk_left = -1
        self.buffer = buffer

    def _body(self, data: bytes):
        if self.status != 200:
            self.sse += data
            return
        text = self.sse + data
        end = text.rfind(b"\n")
        if end < 0:
            self.sse = text
            return
        self.sse = text[end + 1 :]
        for line in text[:end].split(b"\n"):
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                continue
            chunk = orjson.loads(line[6:])
            if "error" in chunk:
                self._fail(StreamFailed(f"error in the stream: {chunk['error']}"))
                continue
            choices = chunk.get("choices")
            if choices and choices[0]["delta"].get("content"):
                self.deltas += 1
                if self.ttft is None:
                    self.ttft = time.perf_counter() - self.started

    def _finish(self):
        if self.status != 200:
            self._fail(StreamFailed(f"{self.status}: {self.sse[:500]!r}"))
            return
        self.reusable = True
        if self.future is not None and not self.future.done():
            self.future.set_result((self.ttft, time.perf_counter() - self.started, self.deltas))


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name == b"content-length":
            return int(value)
    return 0
