from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect

from apps.tenants.permissions import can


def workspace_view(action: str | None = None):
    """A page inside the current workspace: signed in, a member, and allowed `action`."""

    def decorate(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.membership is None:
                return redirect("workspace_create")
            if action and not can(request.membership.role, action):
                raise PermissionDenied("Your role in this workspace does not allow that.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorate
