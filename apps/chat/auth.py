"""`Authorization: Bearer app-…`: an app's Service API key. Sets request.app and
request.workspace; everything the request touches is looked up inside that workspace."""

from __future__ import annotations

from ninja.security import HttpBearer

from apps.chat.keys import app_api_key_authenticate


class AppApiKeyAuth(HttpBearer):
    def authenticate(self, request, token: str):
        app = app_api_key_authenticate(raw=token)
        if app is None:
            return None
        request.app = app
        request.workspace = app.workspace
        return app
