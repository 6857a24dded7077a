"""Makers for the chat routes' path parameters: parameter name → an id of an object that
lives in the given team's workspace. Merged into routes.OBJECT_IN_WORKSPACE."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import Team

OBJECT_IN_WORKSPACE: dict[str, Callable[[Team], str]] = {}

# Routes addressed by a secret token (a public link's code) rather than an object id.
# The public web app's routes are walked on their own in tests/chat/test_webapp_isolation.py.
TOKEN_ROUTES: set[str] = {
    "chat/<str:code>",
    "chat/<str:code>/conversations/<uuid:conversation_id>",
    "chat/<str:code>/conversations/<uuid:conversation_id>/rename",
    "chat/<str:code>/conversations/<uuid:conversation_id>/delete",
    "chat/<str:code>/messages/<uuid:message_id>/feedback",
    "completion/<str:code>",
    "completion/<str:code>/saved",
    "completion/<str:code>/saved/<uuid:message_id>/remove",
    "completion/<str:code>/batch",
    "completion/<str:code>/batch/<uuid:batch_id>",
    "completion/<str:code>/batch/<uuid:batch_id>/results.csv",
}
