from apps.tenants.selectors import membership_current


class CurrentWorkspaceMiddleware:
    """Sets request.workspace and request.membership for a signed-in user (else None)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.workspace = None
        request.membership = None
        if request.user.is_authenticated:
            membership = membership_current(user=request.user)
            if membership is not None:
                request.membership = membership
                request.workspace = membership.workspace
        return self.get_response(request)
