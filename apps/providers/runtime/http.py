"""Pooled HTTP clients for provider calls: a few AsyncClients per event loop (an httpx
AsyncClient must not be shared across loops), every request through the SSRF guard.

Why a few rather than one: httpcore's pool looks at every connection it holds each time
a request starts or a response closes (and counts them all in a list, per connection, to
decide about closing idle ones), so its cost per request grows with the square of its
size. Under 64 concurrent streams that was a tenth of the gateway's time. Calls take the
clients in turn, so each pool stays small; together they allow what one did."""

from __future__ import annotations

import asyncio
import functools
import itertools
import ssl
import weakref

import httpx

from apps.core.outbound import guarded_async_client

TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=60.0, pool=30.0)
SHARDS = 8
# Per client. Keep-alive as many as may be open: httpcore closes idle connections once
# the pool holds more than max_keepalive_connections in all, busy ones included.
LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=32)


class _Shards:
    def __init__(self):
        self.clients: list[httpx.AsyncClient | None] = [None] * SHARDS
        self.turn = itertools.cycle(range(SHARDS))


_shards: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Shards] = weakref.WeakKeyDictionary()


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client: loading the CA bundle takes tens of ms."""
    return httpx.create_ssl_context()


def provider_client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    shards = _shards.get(loop)
    if shards is None:
        shards = _shards[loop] = _Shards()
    index = next(shards.turn)
    client = shards.clients[index]
    if client is None or client.is_closed:
        client = guarded_async_client(timeout=TIMEOUT, limits=LIMITS, verify=_tls())
        shards.clients[index] = client
    return client
