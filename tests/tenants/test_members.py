import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.tenants.models import Invitation, Membership, Role, User
from tests.conftest import PASSWORD, client_for, make_user

pytestmark = pytest.mark.django_db


def _invite(client: Client, email: str, role: str = Role.EDITOR) -> str:
    response = client.post(reverse("members"), {"email": email, "role": role})
    assert response.status_code == 201, response.content.decode()
    return re.search(r"https?://[^\s<]+/invite/[^\s<]+/", response.content.decode()).group(0)


def _path(link: str) -> str:
    return "/" + link.split("://", 1)[1].split("/", 1)[1]


def test_invited_newcomer_signs_up_from_the_link_and_joins_with_the_role(
    team, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        link = _invite(team.client(), "newcomer@example.com", Role.EDITOR)
    assert mailoutbox[0].to == ["newcomer@example.com"]
    assert link in mailoutbox[0].body
    assert "Blue Harbour" in mailoutbox[0].body

    visitor = Client()
    page = visitor.get(_path(link))
    assert "Join Blue Harbour" in page.content.decode()
    response = visitor.post(_path(link), {"name": "Nia", "password": PASSWORD})
    assert response.status_code == 302
    newcomer = User.objects.get(email="newcomer@example.com")
    assert Membership.objects.get(workspace=team.workspace, user=newcomer).role == Role.EDITOR
    members_page = visitor.get(reverse("members")).content.decode()
    assert "Blue Harbour" in members_page and "newcomer@example.com" in members_page


def test_existing_account_accepts_after_signing_in(team):
    person = make_user("already@example.com")
    link = _invite(team.client(), "Already@Example.com", Role.NORMAL)
    anonymous = Client().get(_path(link)).content.decode()
    assert "Sign in to accept" in anonymous
    response = client_for(person).post(_path(link))
    assert response.status_code == 302
    assert Membership.objects.get(workspace=team.workspace, user=person).role == Role.NORMAL
    person.refresh_from_db()
    assert person.current_workspace == team.workspace


def test_an_invitation_cannot_be_used_by_another_account(team):
    link = _invite(team.client(), "intended@example.com")
    intruder = make_user("intruder@example.com")
    response = client_for(intruder).post(_path(link))
    assert response.status_code == 403
    assert not Membership.objects.filter(workspace=team.workspace, user=intruder).exists()


def test_an_invitation_works_once(team):
    link = _invite(team.client(), "once@example.com")
    Client().post(_path(link), {"password": PASSWORD})
    again = Client().get(_path(link))
    assert again.status_code == 404
    assert "not valid" in again.content.decode()


def test_an_expired_invitation_says_so(team):
    link = _invite(team.client(), "late@example.com")
    Invitation.objects.filter(email="late@example.com").update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    response = Client().post(_path(link), {"password": PASSWORD})
    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert not User.objects.filter(email="late@example.com").exists()


def test_a_made_up_invitation_token_is_not_found():
    assert Client().get("/invite/inv-made-up-token/").status_code == 404


def test_inviting_an_existing_member_is_a_clear_error(team):
    response = team.client().post(
        reverse("members"), {"email": "blue-editor@example.com", "role": Role.NORMAL}
    )
    assert response.status_code == 409
    assert "already a member" in response.content.decode()


def test_a_pending_invitation_can_be_withdrawn(team):
    link = _invite(team.client(), "maybe@example.com")
    invitation = Invitation.objects.get(email="maybe@example.com")
    team.client().post(reverse("invitation_revoke", args=[invitation.id]))
    assert Client().get(_path(link)).status_code == 404


def test_admin_changes_a_role_and_removes_a_member(team):
    admin = team.client(Role.ADMIN)
    normal = team.members[Role.NORMAL]
    admin.post(reverse("member_role", args=[normal.id]), {"role": Role.EDITOR})
    normal.refresh_from_db()
    assert normal.role == Role.EDITOR
    admin.post(reverse("member_remove", args=[normal.id]))
    assert not Membership.objects.filter(pk=normal.pk).exists()
    assert client_for(normal.user).get(reverse("members")).status_code == 302


def test_only_an_owner_can_make_an_owner(team):
    admin = team.client(Role.ADMIN)
    editor = team.members[Role.EDITOR]
    response = admin.post(
        reverse("member_role", args=[editor.id]), {"role": Role.OWNER}, follow=True
    )
    assert "Only an owner" in response.content.decode()
    editor.refresh_from_db()
    assert editor.role == Role.EDITOR
    team.client().post(reverse("member_role", args=[editor.id]), {"role": Role.OWNER})
    editor.refresh_from_db()
    assert editor.role == Role.OWNER


def test_an_unknown_role_is_refused(team):
    editor = team.members[Role.EDITOR]
    response = team.client().post(
        reverse("member_role", args=[editor.id]), {"role": "superuser"}, follow=True
    )
    assert "Choose one of the listed roles" in response.content.decode()
    editor.refresh_from_db()
    assert editor.role == Role.EDITOR


def test_the_last_owner_can_neither_leave_nor_be_demoted(team):
    owner = team.members[Role.OWNER]
    client = team.client()
    left = client.post(reverse("member_leave"), follow=True)
    assert "last owner cannot leave" in left.content.decode()
    demoted = client.post(
        reverse("member_role", args=[owner.id]), {"role": Role.ADMIN}, follow=True
    )
    assert "at least one owner" in demoted.content.decode()
    owner.refresh_from_db()
    assert owner.role == Role.OWNER


def test_an_owner_can_leave_once_there_is_another_owner(team):
    team.client().post(
        reverse("member_role", args=[team.members[Role.ADMIN].id]), {"role": Role.OWNER}
    )
    team.client().post(reverse("member_leave"))
    assert not Membership.objects.filter(pk=team.members[Role.OWNER].pk).exists()


def test_a_member_leaves_and_no_longer_sees_the_workspace(team):
    normal = team.members[Role.NORMAL]
    client = client_for(normal.user)
    client.post(reverse("member_leave"))
    assert not Membership.objects.filter(pk=normal.pk).exists()
    assert client.get(reverse("apps")).status_code == 302  # off to "create a workspace"


@pytest.mark.parametrize("role", [Role.EDITOR, Role.NORMAL, Role.DATASET_OPERATOR], ids=str)
def test_members_without_the_right_cannot_invite_or_manage(team, role):
    client = team.client(role)
    target = team.members[Role.ADMIN]
    assert (
        client.post(reverse("members"), {"email": "x@example.com", "role": "normal"}).status_code
        == 403
    )
    assert client.post(reverse("member_remove", args=[target.id])).status_code == 403
    assert (
        client.post(reverse("member_role", args=[target.id]), {"role": "normal"}).status_code == 403
    )
    assert Membership.objects.filter(pk=target.pk, role=Role.ADMIN).exists()
    page = client.get(reverse("members")).content.decode()
    assert "Send invitation" not in page and "blue-admin@example.com" in page


def test_the_only_owner_is_not_offered_a_leave_button(team):
    page = team.client().get(reverse("members")).content.decode()
    assert "Only owner" in page
    assert reverse("member_leave") not in page
    assert (
        reverse("member_leave") in team.client(Role.EDITOR).get(reverse("members")).content.decode()
    )
