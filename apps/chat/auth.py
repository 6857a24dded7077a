"""`Authorization: Bearer app-…`: an app's Service API key. Sets request.app and
request.workspace; everything the request touches is looked up inside that workspace."""

from __future__ import annotations

from ninja.security import HttpBearer

from apps.chat.keys import app_api_key_authenticate
from apps.core.offload import offload


def _attach(request, app):
    if app is None:
        return None
    request.app = app
    request.workspace = app.workspace
    return app


class AppApiKeyAuth(HttpBearer):
    def authenticate(self, request, token: str):
        return _attach(request, app_api_key_authenticate(raw=token))


class AsyncAppApiKeyAuth(HttpBearer):
    """The same for async endpoints (the streaming hot path): the key is checked in a
    pool thread of its own instead of the one thread shared by sync code."""

    async def authenticate(self, request, token: str):
        return _attach(request, await offload(app_api_key_authenticate)(raw=token))
