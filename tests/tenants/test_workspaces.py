import pytest
from django.test import Client
from django.urls import reverse

from apps.tenants.models import Membership, Role, Workspace
from tests.conftest import PASSWORD, client_for

pytestmark = pytest.mark.django_db


def test_a_user_in_two_workspaces_switches_and_the_choice_is_remembered(team, other_team):
    person = team.members[Role.EDITOR].user
    Membership.objects.create(workspace=other_team.workspace, user=person, role=Role.NORMAL)
    client = client_for(person)
    assert "Blue Harbour" in client.get(reverse("apps")).content.decode()

    client.post(reverse("workspace_switch", args=[other_team.workspace.id]))
    page = client.get(reverse("settings")).content.decode()
    assert "Your role here: Member" in page

    fresh = Client()  # a new sign-in lands in the workspace chosen last time
    fresh.post(reverse("login"), {"email": person.email, "password": PASSWORD})
    assert (
        '<span class="ws-name">Crimson Vault</span>' in fresh.get(reverse("apps")).content.decode()
    )


def test_switching_to_a_workspace_you_are_not_in_is_not_found(team, other_team):
    response = team.client().post(reverse("workspace_switch", args=[other_team.workspace.id]))
    assert response.status_code == 404
    team.owner.refresh_from_db()
    assert team.owner.current_workspace == team.workspace


def test_create_another_workspace_and_become_its_owner(team):
    client = team.client(Role.NORMAL)
    client.post(reverse("workspace_create"), {"name": "Side project"})
    created = Workspace.objects.get(name="Side project")
    membership = Membership.objects.get(workspace=created, user=team.members[Role.NORMAL].user)
    assert membership.role == Role.OWNER
    assert "Side project" in client.get(reverse("settings")).content.decode()


def test_workspace_name_is_required(team):
    response = team.client().post(reverse("workspace_create"), {"name": "   "})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()


def test_admin_renames_the_workspace_but_a_member_cannot(team):
    team.client(Role.ADMIN).post(reverse("settings"), {"name": "Blue Lagoon"})
    team.workspace.refresh_from_db()
    assert team.workspace.name == "Blue Lagoon"
    assert (
        team.client(Role.NORMAL).post(reverse("settings"), {"name": "Hijacked"}).status_code == 403
    )
    team.workspace.refresh_from_db()
    assert team.workspace.name == "Blue Lagoon"


def test_deleting_a_workspace_needs_the_typed_name(team):
    client = team.client()
    response = client.post(
        reverse("workspace_delete"), {"confirm_name": "blue harbour"}, follow=True
    )
    assert "Type the workspace name exactly" in response.content.decode()
    assert Workspace.objects.filter(pk=team.workspace.pk).exists()

    client.post(reverse("workspace_delete"), {"confirm_name": "Blue Harbour"})
    assert not Workspace.objects.filter(pk=team.workspace.pk).exists()
    assert not Membership.objects.filter(workspace_id=team.workspace.pk).exists()
    assert client.get(reverse("apps")).status_code == 302


@pytest.mark.parametrize("role", [Role.ADMIN, Role.EDITOR, Role.NORMAL], ids=str)
def test_only_an_owner_can_delete_a_workspace(team, role):
    response = team.client(role).post(reverse("workspace_delete"), {"confirm_name": "Blue Harbour"})
    assert response.status_code == 403
    assert Workspace.objects.filter(pk=team.workspace.pk).exists()
    assert "Danger zone" not in team.client(role).get(reverse("settings")).content.decode()


def test_every_section_shows_an_empty_state_that_says_what_to_do(team):
    client = team.client()
    for section, text in [
        ("apps", "No apps yet"),
        ("knowledge", "No knowledge bases yet"),
        ("workflows", "No workflows yet"),
        ("tools", "No tools yet"),
    ]:
        page = client.get(reverse(section))
        assert page.status_code == 200
        assert text in page.content.decode()


def test_signed_out_visitors_are_sent_to_sign_in():
    response = Client().get(reverse("members"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
