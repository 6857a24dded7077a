from asgiref.sync import sync_to_async

from apps.core.middleware import HybridMiddleware
from apps.tenants.selectors import membership_current


class CurrentWorkspaceMiddleware(HybridMiddleware):
    """Sets request.workspace and request.membership for a signed-in user (else None)."""

    def __call__(self, request):
        request.workspace = None
        request.membership = None
        return super().__call__(request)

    def before(self, request) -> None:
        if request.user.is_authenticated:
            self._set(request, membership_current(user=request.user))

    async def _acall(self, request):
        user = await request.auser()
        if user.is_authenticated:
            self._set(request, await sync_to_async(membership_current)(user=user))
        return await self.get_response(request)

    @staticmethod
    def _set(request, membership) -> None:
        if membership is not None:
            request.membership = membership
            request.workspace = membership.workspace
