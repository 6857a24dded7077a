"""Makers for the chat routes' path parameters: parameter name → an id of an object that
lives in the given team's workspace. Merged into routes.OBJECT_IN_WORKSPACE."""

from __future__ import annotations

from collections.abc import Callable

from apps.chat.models import App, AppApiKey
from apps.tenants.keys import token_digest
from tests.conftest import Team


def _app(team: Team) -> App:
    app = App.objects.for_workspace(team.workspace).order_by("created_at").first()
    if app is None:
        app = App.objects.create(
            workspace=team.workspace,
            name="Victim app",
            mode="chat",
            site_code=f"victim-{team.workspace.id.hex[:12]}",
        )
    return app


def _app_key(team: Team) -> AppApiKey:
    app = _app(team)
    key, _ = AppApiKey.objects.get_or_create(
        workspace=team.workspace,
        app=app,
        name="victim app key",
        defaults={"prefix": "app-victim", "key_hash": token_digest(f"app-{app.id}")},
    )
    return key


OBJECT_IN_WORKSPACE: dict[str, Callable[[Team], str]] = {
    "app_id": lambda team: str(_app(team).id),
    "app_key_id": lambda team: str(_app_key(team).id),
}

# Routes addressed by a secret token (a public link's code) rather than an object id.
TOKEN_ROUTES: set[str] = set()
