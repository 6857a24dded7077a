"""`Authorization: Bearer app-…`: an app's Service API key. Sets request.app and
request.workspace; everything the request touches is looked up inside that workspace."""

from __future__ import annotations

from ninja.security import HttpBearer

from apps.chat.keys import app_api_key_authenticate
from apps.core.offload import offload


class AppApiKeyAuth(HttpBearer):
    async def authenticate(self, request, token: str):
        # Read in a pool thread, not in the request's own sync thread: that thread lives
        # as long as the request, so a streamed answer would hold its database connection
        # to the end, and a hundred streams would exhaust the server's connections.
        # (Ninja awaits this for sync endpoints too.)
        app = await offload(app_api_key_authenticate)(raw=token)
        if app is None:
            return None
        request.app = app
        request.workspace = app.workspace
        return app
