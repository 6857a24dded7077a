"""The pooled HTTP client for provider calls: one AsyncClient per event loop (a client
must not be shared across loops), every request through the SSRF guard."""

from __future__ import annotations

import asyncio
import functools
import ssl

import httpx

from apps.core.outbound import guarded_async_client

TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=60.0, pool=30.0)
# Connections open at once to all providers; more requests wait for one (the pool timeout).
# Idle ones stay open 30 s (httpx says 5): a TLS handshake to a hosted provider costs more
# than the first token.
LIMITS = httpx.Limits(max_connections=512, max_keepalive_connections=512, keepalive_expiry=30.0)

_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
_closers: set[asyncio.Task] = set()  # held here: the loop keeps only weak references


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client: loading the CA bundle takes tens of ms."""
    return httpx.create_ssl_context()


def provider_client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = _clients[loop] = guarded_async_client(
            timeout=TIMEOUT, limits=LIMITS, verify=_tls()
        )
        closer = loop.create_task(_close_with_loop(loop, client))
        _closers.add(closer)
        closer.add_done_callback(_closers.discard)
    return client


async def _close_with_loop(loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient) -> None:
    """Waits for the end of the loop: asyncio.run (and so async_to_sync) cancels what is
    left when its coroutine returns, and this closes the client's connections then."""
    try:
        await asyncio.Event().wait()
    finally:
        if _clients.get(loop) is client:
            del _clients[loop]
        await client.aclose()
