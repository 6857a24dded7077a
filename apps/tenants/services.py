"""Writes for accounts and workspaces. Each action checks the actor's role through the
permission map, writes with explicit fields, and sends mail only after commit."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from apps.core.errors import Conflict, DomainError, NotFound, PermissionDenied
from apps.tenants import selectors
from apps.tenants.keys import new_token, token_digest
from apps.tenants.models import (
    ApiKey,
    ApiKeyScope,
    Invitation,
    Membership,
    Role,
    User,
    Workspace,
)
from apps.tenants.permissions import can

API_KEY_PREFIX = "orr-"
API_KEY_TOUCH_SECONDS = 60  # last_used_at is refreshed at most this often per key


def _require(membership: Membership, action: str) -> None:
    if not can(membership.role, action):
        raise PermissionDenied("Your role in this workspace does not allow that.")


# --- Accounts ----------------------------------------------------------------


def user_create(*, email: str, password: str, name: str = "") -> User:
    """Create an account with a personal workspace that the new user owns."""
    email = email.strip().lower()
    try:
        validate_password(password, user=User(email=email, name=name.strip()))
    except ValidationError as exc:
        raise DomainError(" ".join(exc.messages), code="weak_password") from exc
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password, name=name.strip())
            workspace_create(user=user, name=f"{user.display_name}'s workspace")
    except IntegrityError as exc:
        raise Conflict("An account with this email already exists.") from exc
    return user


# --- Workspaces --------------------------------------------------------------


@transaction.atomic
def workspace_create(*, user: User, name: str) -> Workspace:
    name = name.strip()
    if not name:
        raise DomainError("A workspace needs a name.")
    workspace = Workspace.objects.create(name=name[:100])
    Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    user.current_workspace = workspace
    user.save(update_fields=["current_workspace"])
    return workspace


def workspace_rename(*, actor: Membership, name: str) -> Workspace:
    _require(actor, "workspace.update")
    name = name.strip()
    if not name:
        raise DomainError("A workspace needs a name.")
    workspace = actor.workspace
    workspace.name = name[:100]
    workspace.save(update_fields=["name"])
    return workspace


def workspace_delete(*, actor: Membership, confirm_name: str) -> None:
    _require(actor, "workspace.delete")
    workspace = actor.workspace
    if confirm_name.strip() != workspace.name:
        raise DomainError("Type the workspace name exactly to confirm deletion.")
    workspace.delete()


def workspace_switch(*, user: User, workspace_id) -> Workspace:
    membership = Membership.objects.filter(user=user, workspace_id=workspace_id).first()
    if membership is None:
        raise NotFound("No such workspace.")
    user.current_workspace_id = membership.workspace_id
    user.save(update_fields=["current_workspace"])
    return membership.workspace


# --- Members -----------------------------------------------------------------


def _lock_workspace(workspace: Workspace) -> None:
    # Serialises owner-count checks so two concurrent demotions cannot leave no owner.
    Workspace.objects.select_for_update().filter(pk=workspace.pk).first()


@transaction.atomic
def member_change_role(*, actor: Membership, membership_id, role: str) -> Membership:
    _require(actor, "members.manage")
    _lock_workspace(actor.workspace)
    member = selectors.member_get(workspace=actor.workspace, membership_id=membership_id)
    if role not in Role.values:
        raise DomainError("Choose one of the listed roles.")
    touches_owner = Role.OWNER in (role, member.role)
    if touches_owner and actor.role != Role.OWNER:
        raise PermissionDenied("Only an owner can grant or take away the owner role.")
    if member.role == Role.OWNER and role != Role.OWNER:
        if selectors.owner_count(workspace=actor.workspace) <= 1:
            raise Conflict("A workspace needs at least one owner. Make someone else owner first.")
    member.role = role
    member.save(update_fields=["role"])
    return member


@transaction.atomic
def member_remove(*, actor: Membership, membership_id) -> None:
    _require(actor, "members.manage")
    _lock_workspace(actor.workspace)
    member = selectors.member_get(workspace=actor.workspace, membership_id=membership_id)
    if member.role == Role.OWNER and actor.role != Role.OWNER:
        raise PermissionDenied("Only an owner can remove an owner.")
    _delete_membership(member)


@transaction.atomic
def member_leave(*, membership: Membership) -> None:
    _lock_workspace(membership.workspace)
    _delete_membership(membership)


def _delete_membership(member: Membership) -> None:
    if member.role == Role.OWNER and selectors.owner_count(workspace=member.workspace) <= 1:
        raise Conflict("The last owner cannot leave. Make someone else owner first.")
    member.delete()
    User.objects.filter(pk=member.user_id, current_workspace_id=member.workspace_id).update(
        current_workspace=None
    )


# --- Invitations -------------------------------------------------------------


def invitation_create(
    *, actor: Membership, email: str, role: str, base_url: str = ""
) -> tuple[Invitation, str]:
    """Invite an email address; returns the invitation and its link (shown once).

    `base_url` is the address the inviter is using; without it, SITE_URL."""
    _require(actor, "members.manage")
    email = email.strip().lower()
    if role not in Role.values:
        raise DomainError("Choose one of the listed roles.")
    if role == Role.OWNER and actor.role != Role.OWNER:
        raise PermissionDenied("Only an owner can invite another owner.")
    workspace = actor.workspace
    if Membership.objects.for_workspace(workspace).filter(user__email__iexact=email).exists():
        raise Conflict(f"{email} is already a member of this workspace.")
    token = new_token("inv-")
    with transaction.atomic():
        # A new invitation replaces any pending one for the same address.
        selectors.invitation_list_pending(workspace=workspace).filter(email=email).delete()
        invitation = Invitation.objects.create(
            workspace=workspace,
            email=email,
            role=role,
            token_hash=token_digest(token),
            invited_by=actor.user,
            expires_at=timezone.now() + timedelta(days=settings.ORRERY_INVITATION_DAYS),
        )
        link = (base_url or settings.SITE_URL).rstrip("/") + reverse(
            "invitation_accept", args=[token]
        )
        transaction.on_commit(lambda: _send_invitation_mail(invitation, link))
    return invitation, link


def _send_invitation_mail(invitation: Invitation, link: str) -> None:
    context = {"invitation": invitation, "link": link}
    send_mail(
        subject=f"You are invited to {invitation.workspace.name} on Orrery",
        message=render_to_string("tenants/email/invitation.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )


def invitation_check(*, token: str) -> Invitation:
    invitation = selectors.invitation_by_token(token=token)
    if invitation is None or invitation.accepted_at is not None:
        raise NotFound("This invitation link is not valid. Ask for a new one.")
    if invitation.expires_at <= timezone.now():
        raise DomainError("This invitation has expired. Ask for a new one.", code="expired")
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    invitation = invitation_check(token=token)
    if invitation.email.lower() != user.email.lower():
        raise PermissionDenied(
            f"This invitation is for {invitation.email}. Sign in with that account to accept it."
        )
    claimed = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).update(
        accepted_at=timezone.now(), accepted_by=user
    )
    if not claimed:
        raise NotFound("This invitation link is not valid. Ask for a new one.")
    membership, _ = Membership.objects.get_or_create(
        workspace=invitation.workspace, user=user, defaults={"role": invitation.role}
    )
    user.current_workspace = invitation.workspace
    user.save(update_fields=["current_workspace"])
    return membership


def invitation_revoke(*, actor: Membership, invitation_id) -> None:
    _require(actor, "members.manage")
    selectors.invitation_get(workspace=actor.workspace, invitation_id=invitation_id).delete()


# --- Management API keys -----------------------------------------------------


def api_key_create(
    *, actor: Membership, name: str, scope: str = ApiKeyScope.MANAGEMENT
) -> tuple[ApiKey, str]:
    """Create a key; the raw key is returned once and never stored."""
    _require(actor, "api_keys.manage")
    if scope not in ApiKeyScope.values:
        raise DomainError("Unknown key scope.")
    name = name.strip()
    if not name:
        raise DomainError("Give the key a name so you can recognise it later.")
    raw = new_token(API_KEY_PREFIX)
    key = ApiKey.objects.create(
        workspace=actor.workspace,
        name=name[:100],
        scope=scope,
        prefix=raw[: len(API_KEY_PREFIX) + 6],
        key_hash=token_digest(raw),
        created_by=actor.user,
    )
    return key, raw


def api_key_revoke(*, actor: Membership, api_key_id) -> None:
    _require(actor, "api_keys.manage")
    key = selectors.api_key_get(workspace=actor.workspace, api_key_id=api_key_id)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    cache.delete(_key_cache_name(key.key_hash))


def _key_cache_name(key_hash: str) -> str:
    return f"apikey:{key_hash}"


def api_key_from_cache(*, raw: str, scope: str) -> ApiKey | None:
    """The key if a recent lookup cached it; never touches the database."""
    if not raw or not raw.startswith(API_KEY_PREFIX):
        return None
    hit = cache.get(_key_cache_name(token_digest(raw)))
    if hit is None or hit[1] != scope:
        return None
    key_id, key_scope, workspace_id, workspace_name, created_by_id = hit
    workspace = Workspace(id=workspace_id, name=workspace_name)
    return ApiKey(id=key_id, scope=key_scope, workspace=workspace, created_by_id=created_by_id)


def api_key_authenticate_cached(*, raw: str, scope: str) -> ApiKey | None:
    """api_key_authenticate that leaves the answer in the cache for hot paths (the
    gateway) for API_KEY_TOUCH_SECONDS; revoking a key deletes the entry at once."""
    key = api_key_authenticate(raw=raw, scope=scope)
    if key is not None:
        entry = (key.pk, key.scope, key.workspace_id, key.workspace.name, key.created_by_id)
        cache.set(_key_cache_name(key.key_hash), entry, timeout=API_KEY_TOUCH_SECONDS)
    return key


def api_key_authenticate(*, raw: str, scope: str = ApiKeyScope.MANAGEMENT) -> ApiKey | None:
    if not raw or not raw.startswith(API_KEY_PREFIX):
        return None
    key = (
        ApiKey.objects.select_related("workspace")
        .filter(key_hash=token_digest(raw), scope=scope, revoked_at__isnull=True)
        .first()
    )
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > API_KEY_TOUCH_SECONDS:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
