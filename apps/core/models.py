"""Shared model pieces: the tenant-scoped base model and the worker heartbeat."""

import uuid

from django.db import models


class TenantQuerySet(models.QuerySet):
    def for_workspace(self, workspace) -> "TenantQuerySet":
        return self.filter(workspace=workspace)


class TenantModel(models.Model):
    """A row that belongs to one workspace. Fetch it with Model.objects.for_workspace(ws)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey("tenants.Workspace", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


class WorkerHeartbeat(models.Model):
    """Last sign of life from each background worker process (host:pid)."""

    worker = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.worker


class DataKey(TenantModel):
    """A workspace's data key, wrapped (encrypted) by the master keys; see apps.core.crypto."""

    workspace = models.OneToOneField(
        "tenants.Workspace", on_delete=models.CASCADE, related_name="+"
    )
    wrapped_key = models.TextField()
    rotated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"data key of workspace {self.workspace_id}"
