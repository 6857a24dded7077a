import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from apps.tenants.models import ApiKey, Role, User, Workspace

pytestmark = pytest.mark.django_db


def _create_key(client: Client, name: str = "deploy bot") -> str:
    response = client.post(reverse("api_keys"), {"name": name})
    assert response.status_code == 201
    return re.search(r"orr-[A-Za-z0-9_-]+", response.content.decode()).group(0)


def _bearer(key: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {key}"})


def test_a_key_is_shown_once_and_opens_the_management_api(team):
    client = team.client(Role.ADMIN)
    key = _create_key(client)
    listing = client.get(reverse("api_keys")).content.decode()
    assert key not in listing
    assert key[:10] in listing

    response = _bearer(key).get("/api/workspaces/current")
    assert response.status_code == 200
    assert response.json()["name"] == "Blue Harbour"
    assert response.json()["member_count"] == 5
    assert ApiKey.objects.get(name="deploy bot").last_used_at is not None


def test_the_raw_key_is_nowhere_in_the_database(team):
    key = _create_key(team.client())
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM tenants_apikey")
        rows = cursor.fetchall()
    assert rows and key not in repr(rows)
    assert key[len("orr-") + 6 :] not in repr(rows)


def test_a_revoked_key_stops_working_at_once(team):
    client = team.client()
    key = _create_key(client)
    client.post(reverse("api_key_revoke", args=[ApiKey.objects.get().id]))
    response = _bearer(key).get("/api/workspaces/current")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer orr-not-a-real-key", "Basic dXNlcjpwYXNz", "Bearer " + "a" * 5000],
    ids=["missing", "empty", "unknown", "basic", "huge"],
)
def test_the_api_refuses_requests_without_a_valid_key(header):
    client = Client(headers={"Authorization": header} if header else {})
    response = client.get("/api/workspaces/current")
    assert response.status_code == 401
    assert set(response.json()) == {"code", "message"}


@pytest.mark.parametrize("role", [Role.EDITOR, Role.NORMAL, Role.DATASET_OPERATOR], ids=str)
def test_only_owners_and_admins_manage_keys(team, role):
    assert team.client(role).post(reverse("api_keys"), {"name": "sneaky"}).status_code == 403
    assert not ApiKey.objects.exists()


def test_a_key_needs_a_name(team):
    response = team.client().post(reverse("api_keys"), {"name": ""})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()


def test_create_workspace_command_provisions_and_prints_a_working_key():
    out = StringIO()
    call_command(
        "create_workspace",
        owner_email="ops@example.com",
        password="provision-Me-2024",
        name="Automation",
        api_key=True,
        stdout=out,
    )
    key = out.getvalue().strip().splitlines()[-1]
    assert _bearer(key).get("/api/workspaces/current").json()["name"] == "Automation"

    again = StringIO()  # a second run reuses the account and the workspace
    call_command(
        "create_workspace",
        owner_email="ops@example.com",
        password="provision-Me-2024",
        name="Automation",
        stdout=again,
    )
    assert "Reusing account" in again.getvalue() and "Reusing workspace" in again.getvalue()
    assert User.objects.filter(email="ops@example.com").count() == 1
    assert Workspace.objects.filter(name="Automation").count() == 1
