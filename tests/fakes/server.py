"""A real HTTP server on a loopback port for fake model providers.

Each fake subclasses FakeProvider and maps (method, path pattern) to a handler that
returns a Reply. Streaming replies go out with chunked transfer encoding, one write per
chunk, so SSE and NDJSON framing reach the client exactly as a real provider sends them.

Tests steer a fake with `queue(reply)` (the next request gets that reply instead, e.g. a
429 with the provider's error body) and inspect `requests` (what the client sent)."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self):
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunk_delay: float = 0.0  # seconds between streamed chunks
    drop_after: int | None = None  # close the connection after this many chunks

    @classmethod
    def json(cls, data, status: int = 200, headers: dict | None = None) -> Reply:
        return cls(
            status=status,
            body=json.dumps(data).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
        )

    @classmethod
    def sse(cls, events: Iterable[str], **kwargs) -> Reply:
        """`events` are whole SSE frames without the blank line, e.g. 'data: {...}'."""
        return cls(
            body=(f"{frame}\n\n".encode() for frame in events),
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
            **kwargs,
        )

    @classmethod
    def ndjson(cls, objects: Iterable, **kwargs) -> Reply:
        return cls(
            body=(json.dumps(obj).encode() + b"\n" for obj in objects),
            headers={"Content-Type": "application/x-ndjson"},
            **kwargs,
        )


Handler = Callable[[Request], Reply]


class _Server(ThreadingHTTPServer):
    # Real providers take a burst of connections; the standard library's backlog of 5
    # would refuse part of a burst of concurrent streams.
    request_queue_size = 1024


class FakeProvider:
    """Subclasses fill `routes` in `__init__` via `self.route(method, pattern, handler)`."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern, Handler]] = []
        self._queued: deque[Reply] = deque()
        self.requests: list[Request] = []
        self.first_byte_delay = 0.0  # seconds before any reply (a slow provider)
        self._server: _Server | None = None

    # --- configuration -----------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(f"^{pattern}$"), handler))

    def queue(self, *replies: Reply) -> None:
        self._queued.extend(replies)

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- lifecycle ---------------------------------------------------------------
    def start(self) -> FakeProvider:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so client pooling is exercised

            def log_message(self, *args):  # keep test output clean
                pass

            def setup(self):
                super().setup()
                # Real providers flush each SSE frame at once; without this, Nagle's
                # algorithm holds small frames back ~40 ms behind the client's delayed ACK.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _handle(self):
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=self.command,
                    path=split.path,
                    query=parse_qs(split.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                fake.requests.append(request)
                reply = fake._reply_for(request)
                if fake.first_byte_delay:
                    time.sleep(fake.first_byte_delay)
                self._write(reply)

            do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815

            def _write(self, reply: Reply):
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if isinstance(reply.body, bytes):
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for sent, chunk in enumerate(reply.body):
                    if reply.drop_after is not None and sent >= reply.drop_after:
                        self.close_connection = True
                        self.wfile.flush()
                        self.connection.shutdown(2)  # mid-stream: no terminating chunk
                        return
                    if reply.chunk_delay:
                        time.sleep(reply.chunk_delay)
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _reply_for(self, request: Request) -> Reply:
        if self._queued:
            return self._queued.popleft()
        for method, pattern, handler in self._routes:
            if method == request.method and pattern.match(request.path):
                return handler(request)
        return Reply.json({"error": {"message": f"no route {request.path}"}}, status=404)
