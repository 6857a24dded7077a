"""Pooled HTTP clients for provider calls: one AsyncClient per event loop (an httpx
AsyncClient must not be shared across loops), every request through the SSRF guard."""

from __future__ import annotations

import asyncio
import weakref

import httpx

from apps.core.outbound import guarded_async_client

TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=60.0, pool=30.0)
LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=50)

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def provider_client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = guarded_async_client(timeout=TIMEOUT, limits=LIMITS)
        _clients[loop] = client
    return client
