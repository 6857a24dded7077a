from ninja.security import HttpBearer

from apps.tenants.services import api_key_authenticate


class WorkspaceApiKey(HttpBearer):
    """`Authorization: Bearer orr-…`: a management API key; sets request.workspace."""

    def authenticate(self, request, token: str):
        key = api_key_authenticate(raw=token)
        if key is None:
            return None
        request.workspace = key.workspace
        request.api_key = key
        return key
