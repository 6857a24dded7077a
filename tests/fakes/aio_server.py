"""A fake provider served on asyncio (aiohttp's server on uvloop) instead of a thread per
connection, for the benchmarks.

A benchmark streams to dozens of clients at once from the same small machine as the
server it measures. With a thread per stream the fake spends a third of a core on its
own wake-ups and locks, and its delays grow with whatever else runs, which then reads
as the measured server's latency. Here the same fake (its routes, replies and `queue`)
answers from one event loop, writing each chunk of a streamed reply as its own HTTP
chunk, as `server.FakeProvider` does."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

import uvloop
from aiohttp import web

from tests.fakes.server import FakeProvider, Request


def serve_forever(fake: FakeProvider, announce=print) -> None:
    """Serve `fake` on a free loopback port until the process is stopped; `announce`
    gets the base URL once it listens."""
    uvloop.run(_serve(fake, announce))


async def _serve(fake: FakeProvider, announce) -> None:
    # A fake that answers 64 streams at once must not log or buffer each request.
    server = web.Server(lambda request: _answer(fake, request), access_log=None)
    runner = web.ServerRunner(server, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    host, port = runner.addresses[0][:2]
    announce(f"http://{host}:{port}")
    await asyncio.Event().wait()


async def _answer(fake: FakeProvider, incoming: web.BaseRequest) -> web.StreamResponse:
    request = Request(
        method=incoming.method,
        path=incoming.path,
        query=parse_qs(incoming.query_string),
        headers={name.lower(): value for name, value in incoming.headers.items()},
        body=await incoming.read(),
    )
    reply = fake._reply_for(request)  # not kept in fake.requests: a benchmark sends many
    if fake.first_byte_delay:
        await asyncio.sleep(fake.first_byte_delay)
    if isinstance(reply.body, bytes):
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)
    response = web.StreamResponse(status=reply.status, headers=reply.headers)
    response.enable_chunked_encoding()
    await response.prepare(incoming)
    for sent, chunk in enumerate(reply.body):
        if reply.drop_after is not None and sent >= reply.drop_after:
            incoming.transport.close()  # mid-stream: no terminating chunk
            return response
        if reply.chunk_delay:
            await asyncio.sleep(reply.chunk_delay)
        await response.write(chunk)
    await response.write_eof()
    return response
