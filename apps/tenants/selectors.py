"""Reads of accounts and workspaces. Every lookup of a workspace object happens inside
the workspace, so a foreign id is simply not found."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from apps.core.errors import NotFound
from apps.tenants.keys import token_digest
from apps.tenants.models import ApiKey, Invitation, Membership, Role, User, Workspace


def membership_list_for_user(*, user: User) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(user=user).select_related("workspace").order_by("workspace__name")
    )


def membership_current(*, user: User) -> Membership | None:
    """The membership of the workspace the user last chose, else their oldest one."""
    memberships = Membership.objects.filter(user=user).select_related("workspace")
    if user.current_workspace_id:
        chosen = memberships.filter(workspace_id=user.current_workspace_id).first()
        if chosen:
            return chosen
    return memberships.order_by("created_at").first()


def member_list(*, workspace: Workspace) -> QuerySet[Membership]:
    return Membership.objects.for_workspace(workspace).select_related("user").order_by("created_at")


def member_get(*, workspace: Workspace, membership_id) -> Membership:
    found = member_list(workspace=workspace).filter(pk=membership_id).first()
    if found is None:
        raise NotFound("No such member in this workspace.")
    return found


def owner_count(*, workspace: Workspace) -> int:
    return Membership.objects.for_workspace(workspace).filter(role=Role.OWNER).count()


def invitation_list_pending(*, workspace: Workspace) -> QuerySet[Invitation]:
    return (
        Invitation.objects.for_workspace(workspace)
        .filter(accepted_at__isnull=True, expires_at__gt=timezone.now())
        .order_by("-created_at")
    )


def invitation_get(*, workspace: Workspace, invitation_id) -> Invitation:
    found = Invitation.objects.for_workspace(workspace).filter(pk=invitation_id).first()
    if found is None:
        raise NotFound("No such invitation in this workspace.")
    return found


def invitation_by_token(*, token: str) -> Invitation | None:
    if not token:
        return None
    return (
        Invitation.objects.select_related("workspace", "invited_by")
        .filter(token_hash=token_digest(token))
        .first()
    )


def api_key_list(*, workspace: Workspace) -> QuerySet[ApiKey]:
    return (
        ApiKey.objects.for_workspace(workspace)
        .select_related("created_by")
        .order_by("revoked_at", "-created_at")
    )


def api_key_get(*, workspace: Workspace, api_key_id) -> ApiKey:
    found = ApiKey.objects.for_workspace(workspace).filter(pk=api_key_id).first()
    if found is None:
        raise NotFound("No such API key in this workspace.")
    return found
