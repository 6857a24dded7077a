"""Makers for the chat routes' path parameters: parameter name → an id of an object that
lives in the given team's workspace. Merged into routes.OBJECT_IN_WORKSPACE."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import Team

OBJECT_IN_WORKSPACE: dict[str, Callable[[Team], str]] = {}

# Routes addressed by a secret token (a public link's code) rather than an object id.
TOKEN_ROUTES: set[str] = set()
