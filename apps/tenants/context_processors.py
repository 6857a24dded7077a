from apps.tenants.permissions import allowed_actions
from apps.tenants.selectors import membership_list_for_user


def workspace(request) -> dict:
    """The current workspace, the switcher's list, and what the user's role may do."""
    membership = getattr(request, "membership", None)
    user = getattr(request, "user", None)
    if not (user and user.is_authenticated):
        return {"ws_can": allowed_actions(None)}
    return {
        "current_workspace": getattr(request, "workspace", None),
        "current_membership": membership,
        "my_memberships": membership_list_for_user(user=user),
        "ws_can": allowed_actions(membership.role if membership else None),
    }
