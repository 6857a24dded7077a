from ninja.security import HttpBearer

from apps.tenants.models import ApiKeyScope, Membership, Role
from apps.tenants.services import api_key_authenticate


class WorkspaceApiKey(HttpBearer):
    """`Authorization: Bearer orr-…`: a workspace API key of the given scope. Sets
    request.workspace, and request.membership to act with: only owners and admins can
    create keys, so a key acts with admin rights."""

    scope = ApiKeyScope.MANAGEMENT

    def authenticate(self, request, token: str):
        key = api_key_authenticate(raw=token, scope=self.scope)
        if key is None:
            return None
        request.workspace = key.workspace
        request.api_key = key
        request.membership = Membership(
            workspace=key.workspace, user_id=key.created_by_id, role=Role.ADMIN
        )
        return key


class GatewayApiKey(WorkspaceApiKey):
    scope = ApiKeyScope.GATEWAY
