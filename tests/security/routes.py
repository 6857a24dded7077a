"""Every route the project serves, and how to fill its path parameters with the id of
an object that belongs to a given workspace.

A new route whose parameter is not listed here makes the isolation tests fail: add a
maker for it below, so every later feature is walked with another workspace's ids."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta

from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from apps.providers import services
from apps.providers.models import CredentialSet
from apps.tenants.keys import token_digest
from apps.tenants.models import ApiKey, Invitation, Role
from tests.conftest import Team
from tests.security import makers_chat, makers_datasets

_PARAM = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


def _invitation(team: Team) -> str:
    invitation, _ = Invitation.objects.get_or_create(
        workspace=team.workspace,
        email="pending-guest@example.com",
        defaults={
            "role": Role.NORMAL,
            "token_hash": token_digest(f"inv-{team.workspace.id}"),
            "expires_at": timezone.now() + timedelta(days=3),
        },
    )
    return str(invitation.id)


def _api_key(team: Team) -> str:
    key, _ = ApiKey.objects.get_or_create(
        workspace=team.workspace,
        name="victim key",
        defaults={"prefix": "orr-victim", "key_hash": token_digest(f"orr-{team.workspace.id}")},
    )
    return str(key.id)


def _credential_set(team: Team) -> str:
    existing = CredentialSet.objects.for_workspace(team.workspace).first()
    if existing:
        return str(existing.id)
    created = services.credential_set_add(
        actor=team.members[Role.OWNER],
        provider="openai",
        model_type="llm",
        model="gpt-4o-mini",
        name="victim set",
        credentials={"openai_api_key": VICTIM_SECRET},
        validate=False,
    )
    return str(created.id)


# A secret stored in the victim workspace; no response to anyone else may contain it.
VICTIM_SECRET = "sk-victim-0123456789abcdef"

# Parameter name → an id of an object that lives in the given team's workspace.
OBJECT_IN_WORKSPACE: dict[str, Callable[[Team], str]] = {
    "membership_id": lambda team: str(team.members[Role.EDITOR].id),
    "invitation_id": _invitation,
    "api_key_id": _api_key,
    "workspace_id": lambda team: str(team.workspace.id),
    "credential_set_id": _credential_set,
    **makers_chat.OBJECT_IN_WORKSPACE,
    **makers_datasets.OBJECT_IN_WORKSPACE,
}

# Parameters that name something public (a catalog provider, a model type), not an
# object of a workspace: routes with only these answer for the caller's own workspace.
PLAIN_VALUES: dict[str, str] = {
    "provider": "openai",
    "model_type": "llm",
}

# Routes addressed by a secret token rather than an object id; tested on their own.
TOKEN_ROUTES = {
    "invite/<str:token>/",
    "password-reset/<uidb64>/<token>/",
    *makers_chat.TOKEN_ROUTES,
    *makers_datasets.TOKEN_ROUTES,
}

# Operators' Django admin: staff only, tested on its own.
STAFF_PREFIX = "admin/"


def all_routes() -> Iterator[str]:
    def walk(patterns, prefix: str):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                yield prefix + str(entry.pattern)

    seen = set()
    for route in walk(get_resolver().url_patterns, ""):
        if route not in seen:
            seen.add(route)
            yield route


def route_params(route: str) -> list[str]:
    """The route's parameters that address an object of a workspace."""
    return [m.group("name") for m in _PARAM.finditer(route) if m.group("name") not in PLAIN_VALUES]


def fill(route: str, team: Team) -> str:
    """The route's path with each parameter set to an object of `team`'s workspace."""

    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name in PLAIN_VALUES:
            return PLAIN_VALUES[name]
        if name not in OBJECT_IN_WORKSPACE:
            raise AssertionError(
                f"Route {route!r} takes <{name}>: add a maker for it to "
                "OBJECT_IN_WORKSPACE in tests/security/routes.py"
            )
        return OBJECT_IN_WORKSPACE[name](team)

    return "/" + _PARAM.sub(replace, route).lstrip("^").rstrip("$")


def walked_routes() -> list[str]:
    return [
        route
        for route in all_routes()
        if not route.startswith(STAFF_PREFIX) and route not in TOKEN_ROUTES
    ]
