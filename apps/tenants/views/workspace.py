"""Workspace pages: settings, members and invitations, API keys, switching."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.core.errors import DomainError
from apps.core.pages import run_action
from apps.tenants import selectors, services
from apps.tenants.decorators import workspace_view
from apps.tenants.forms import (
    ApiKeyForm,
    DeleteWorkspaceForm,
    InviteForm,
    WorkspaceNameForm,
)
from apps.tenants.models import Role
from apps.tenants.permissions import can


@workspace_view()
def home_view(request):
    if not can(request.membership.role, "apps.use"):  # dataset operators: knowledge only
        return redirect("knowledge")
    return redirect("apps")


@workspace_view()
def section_view(request, section: str):
    """Apps, Knowledge, Workflows and Tools: empty until their features land."""
    return render(request, "tenants/section.html", {"section": section})


@workspace_view("workspace.view")
def settings_view(request):
    membership = request.membership
    if request.method == "POST" and not can(membership.role, "workspace.update"):
        raise PermissionDenied("Only owners and admins can rename the workspace.")
    rename_form = WorkspaceNameForm(request.POST or None, initial={"name": request.workspace.name})
    status = 200
    if request.method == "POST":
        status = 400
        if rename_form.is_valid() and run_action(
            request,
            services.workspace_rename,
            success="Workspace renamed.",
            actor=membership,
            name=rename_form.cleaned_data["name"],
        ):
            return redirect("settings")
    context = {"rename_form": rename_form, "delete_form": DeleteWorkspaceForm()}
    return render(request, "tenants/settings.html", context, status=status)


@require_POST
@workspace_view("workspace.delete")
def workspace_delete_view(request):
    form = DeleteWorkspaceForm(request.POST)
    name = request.workspace.name
    if form.is_valid() and run_action(
        request,
        services.workspace_delete,
        success=f"Workspace “{name}” was deleted.",
        actor=request.membership,
        confirm_name=form.cleaned_data["confirm_name"],
    ):
        return redirect("home")
    if not form.is_valid():
        messages.error(request, "Type the workspace name to confirm deletion.")
    return redirect("settings")


@workspace_view("members.view")
def members_view(request):
    workspace = request.workspace
    invite_form = InviteForm(request.POST or None)
    new_invitation_link = None
    status = 200
    if request.method == "POST":
        status = 400
        if invite_form.is_valid():
            try:
                invitation, link = services.invitation_create(
                    actor=request.membership,
                    email=invite_form.cleaned_data["email"],
                    role=invite_form.cleaned_data["role"],
                    base_url=request.build_absolute_uri("/"),
                )
            except DomainError as exc:
                invite_form.add_error(None, exc.message)
                status = exc.status
            else:
                messages.success(request, f"Invitation sent to {invitation.email}.")
                new_invitation_link, invite_form, status = link, InviteForm(), 201
    context = {
        "members": selectors.member_list(workspace=workspace),
        "owner_count": selectors.owner_count(workspace=workspace),
        "invitations": selectors.invitation_list_pending(workspace=workspace),
        "invite_form": invite_form,
        "new_invitation_link": new_invitation_link,
        "roles": Role.choices,
    }
    return render(request, "tenants/members.html", context, status=status)


@require_POST
@workspace_view("members.manage")
def member_role_view(request, membership_id):
    run_action(
        request,
        services.member_change_role,
        success="Role updated.",
        actor=request.membership,
        membership_id=membership_id,
        role=request.POST.get("role", ""),
    )
    return redirect("members")


@require_POST
@workspace_view("members.manage")
def member_remove_view(request, membership_id):
    run_action(
        request,
        services.member_remove,
        success="Member removed.",
        actor=request.membership,
        membership_id=membership_id,
    )
    return redirect("members")


@require_POST
@workspace_view("members.manage")
def invitation_revoke_view(request, invitation_id):
    run_action(
        request,
        services.invitation_revoke,
        success="Invitation withdrawn.",
        actor=request.membership,
        invitation_id=invitation_id,
    )
    return redirect("members")


@require_POST
@workspace_view()
def member_leave_view(request):
    name = request.workspace.name
    if run_action(
        request, services.member_leave, success=f"You left {name}.", membership=request.membership
    ):
        return redirect("home")
    return redirect("members")


@workspace_view("api_keys.manage")
def api_keys_view(request):
    form = ApiKeyForm(request.POST or None)
    new_key = None  # shown in this response only; never stored
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                _, new_key = services.api_key_create(
                    actor=request.membership,
                    name=form.cleaned_data["name"],
                    scope=form.cleaned_data["scope"],
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                form, status = ApiKeyForm(), 201
    context = {
        "form": form,
        "keys": selectors.api_key_list(workspace=request.workspace),
        "new_key": new_key,
    }
    return render(request, "tenants/api_keys.html", context, status=status)


@require_POST
@workspace_view("api_keys.manage")
def api_key_revoke_view(request, api_key_id):
    run_action(
        request,
        services.api_key_revoke,
        success="API key revoked.",
        actor=request.membership,
        api_key_id=api_key_id,
    )
    return redirect("api_keys")


@login_required
def workspace_create_view(request):
    form = WorkspaceNameForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            workspace = services.workspace_create(user=request.user, name=form.cleaned_data["name"])
            messages.success(request, f"Workspace “{workspace.name}” created.")
            return redirect("home")
    return render(request, "tenants/workspace_create.html", {"form": form}, status=status)


@require_POST
@login_required
def workspace_switch_view(request, workspace_id):
    run_action(request, services.workspace_switch, user=request.user, workspace_id=workspace_id)
    return redirect("home")
