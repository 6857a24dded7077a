from ninja.security import HttpBearer

from apps.core.offload import offload
from apps.tenants.models import ApiKeyScope, Membership, Role
from apps.tenants.services import (
    api_key_authenticate,
    api_key_authenticate_cached,
    api_key_from_cache,
)


class WorkspaceApiKey(HttpBearer):
    """`Authorization: Bearer orr-…`: a workspace API key of the given scope. Sets
    request.workspace, and request.membership to act with: only owners and admins can
    create keys, so a key acts with admin rights."""

    scope = ApiKeyScope.MANAGEMENT

    def authenticate(self, request, token: str):
        return _attach(request, api_key_authenticate(raw=token, scope=self.scope))


class GatewayApiKey(WorkspaceApiKey):
    """The same for the gateway's async views, on its hot path: a recently seen key is
    answered from the cache without leaving the event loop; otherwise the database is
    read in a worker thread of its own."""

    scope = ApiKeyScope.GATEWAY

    async def authenticate(self, request, token: str):
        key = api_key_from_cache(raw=token, scope=self.scope)
        if key is None:
            key = await offload(api_key_authenticate_cached)(raw=token, scope=self.scope)
        return _attach(request, key)


def _attach(request, key):
    if key is None:
        return None
    request.workspace = key.workspace
    request.api_key = key
    request.membership = Membership(
        workspace=key.workspace, user_id=key.created_by_id, role=Role.ADMIN
    )
    return key
