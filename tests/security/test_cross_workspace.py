"""Nothing of one workspace can be read or changed from another: every route, every
method, as the most privileged member of the other workspace, by session and by API key."""

import pytest
from django.test import Client

from apps.chat.keys import app_api_key_create
from apps.chat.services import apps as app_services
from apps.datasets.models import Segment
from apps.providers import services
from apps.providers.models import CredentialSet, ProviderConfig
from apps.tenants.models import ApiKey, ApiKeyScope, Invitation, Membership, Role
from apps.tenants.services import api_key_create
from tests.conftest import client_for
from tests.security.routes import VICTIM_SECRET, fill, route_params, walked_routes

METHODS = ["get", "post", "put", "patch", "delete"]
pytestmark = pytest.mark.django_db


def _snapshot(team):
    return {
        "name": type(team.workspace).objects.get(pk=team.workspace.pk).name,
        "members": sorted(
            Membership.objects.for_workspace(team.workspace).values_list("user__email", "role")
        ),
        "invitations": sorted(
            Invitation.objects.for_workspace(team.workspace).values_list("email", "accepted_at")
        ),
        "keys": sorted(
            ApiKey.objects.for_workspace(team.workspace).values_list("name", "revoked_at")
        ),
        "providers": sorted(
            ProviderConfig.objects.for_workspace(team.workspace).values_list(
                "provider", "encrypted_credentials", "enabled"
            )
        ),
        "credential_sets": sorted(
            CredentialSet.objects.for_workspace(team.workspace).values_list("name", "enabled")
        ),
        "knowledge": sorted(
            Segment.objects.for_workspace(team.workspace).values_list(
                "dataset__name", "document__name", "document__enabled", "content", "enabled"
            )
        ),
    }


def _visible_secrets(team) -> list[str]:
    """Strings that only someone inside the victim workspace could know."""
    return [
        team.workspace.name,
        "blue-editor@example.com",
        "pending-guest@example.com",
        VICTIM_SECRET,
        VICTIM_SECRET[:12],
    ]


def test_the_walk_covers_routes_with_object_ids():
    routes = walked_routes()
    assert any(route_params(r) for r in routes)
    assert "api/workspaces/current" in routes


def test_another_workspace_cannot_reach_anything_by_id(team, other_team):
    attacker = other_team.owner
    attacker_owner = other_team.members[Role.OWNER]
    _, attacker_key = api_key_create(actor=attacker_owner, name="attacker")
    _, attacker_gateway = api_key_create(
        actor=attacker_owner, name="gateway", scope=ApiKeyScope.GATEWAY
    )
    _, attacker_dataset = api_key_create(
        actor=attacker_owner, name="knowledge", scope=ApiKeyScope.DATASET
    )
    services.provider_credentials_save(
        actor=team.members[Role.OWNER],
        provider="openai",
        credentials={"openai_api_key": VICTIM_SECRET},
        validate=False,
    )
    attacker_app = app_services.app_create(actor=attacker_owner, name="Attacker", mode="chat")
    _, attacker_app_key = app_api_key_create(actor=attacker_owner, app=attacker_app)
    paths = {route: fill(route, team) for route in walked_routes()}  # creates victim objects
    before = _snapshot(team)
    failures = []
    for route, path in paths.items():
        has_ids = bool(route_params(route))
        for method in METHODS:
            for how, client in (
                ("session", client_for(attacker)),
                ("api key", Client(headers={"Authorization": f"Bearer {attacker_key}"})),
                ("gateway key", Client(headers={"Authorization": f"Bearer {attacker_gateway}"})),
                ("app key", Client(headers={"Authorization": f"Bearer {attacker_app_key}"})),
                ("dataset key", Client(headers={"Authorization": f"Bearer {attacker_dataset}"})),
            ):
                if how == "app key":  # the Service API wants its `user` before it looks
                    response = getattr(client, method)(
                        path + "?user=walker", {"user": "walker"}, content_type="application/json"
                    )
                else:
                    response = getattr(client, method)(path)
                body = response.content.decode(errors="replace")
                leaked = [s for s in _visible_secrets(team) if s in body]
                to_login = response.status_code == 302 and response["Location"].startswith(
                    "/login/"
                )  # a page asked of a caller with no session
                if response.status_code == 500:
                    failures.append(f"{method.upper()} {path} ({how}): server error")
                elif has_ids and not to_login and response.status_code not in (401, 403, 404, 405):
                    failures.append(
                        f"{method.upper()} {path} ({how}): {response.status_code}, expected 404"
                    )
                if leaked:
                    failures.append(f"{method.upper()} {path} ({how}) shows {leaked}")
    assert not failures, "\n".join(failures)
    assert _snapshot(team) == before


def test_admin_is_for_operators_only(team):
    workspace_owner = team.client()
    response = workspace_owner.get("/admin/tenants/workspace/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]

    team.owner.is_staff = team.owner.is_superuser = True
    team.owner.save(update_fields=["is_staff", "is_superuser"])
    operator = client_for(team.owner)
    for model in ["user", "workspace", "membership", "invitation", "apikey"]:
        listing = operator.get(f"/admin/tenants/{model}/?q=blue")
        assert listing.status_code == 200, model
    assert operator.get("/admin/core/workerheartbeat/").status_code == 200
    api_key_create(actor=team.members[Role.OWNER], name="admin view")
    key_page = operator.get(f"/admin/tenants/apikey/{ApiKey.objects.get().id}/change/")
    assert "key_hash" not in key_page.content.decode()
