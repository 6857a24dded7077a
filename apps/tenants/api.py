from datetime import datetime
from uuid import UUID

from ninja import Router, Schema

from apps.tenants.models import Membership

router = Router(tags=["workspaces"])


class WorkspaceOut(Schema):
    id: UUID
    name: str
    created_at: datetime
    member_count: int


@router.get("/workspaces/current", response=WorkspaceOut)
def workspace_current(request):
    """The workspace that owns the API key used for this request."""
    workspace = request.workspace
    return {
        "id": workspace.id,
        "name": workspace.name,
        "created_at": workspace.created_at,
        "member_count": Membership.objects.for_workspace(workspace).count(),
    }
