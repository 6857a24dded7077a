"""A Knowledge API client with a dataset key of a team."""

from __future__ import annotations

import json

from django.test import Client

from apps.datasets.services.datasets import dataset_api_key_create
from apps.tenants.models import Role


class KnowledgeClient:
    """Django's test client with `Authorization: Bearer <dataset key>` and JSON bodies."""

    def __init__(self, key: str):
        self.key = key
        self.client = Client(headers={"Authorization": f"Bearer {key}"})

    def get(self, path, params=None):
        return self.client.get(f"/v1{path}", params or {})

    def post(self, path, body=None, **kwargs):
        if "data" in kwargs:  # multipart
            return self.client.post(f"/v1{path}", kwargs["data"])
        return self.client.post(
            f"/v1{path}", json.dumps(body or {}), content_type="application/json"
        )

    def patch(self, path, body):
        return self.client.patch(f"/v1{path}", json.dumps(body), content_type="application/json")

    def delete(self, path):
        return self.client.delete(f"/v1{path}")


def knowledge_client_for(team) -> KnowledgeClient:
    """A client with a fresh dataset key made by the team's owner."""
    _, raw = dataset_api_key_create(actor=team.members[Role.OWNER], name="tests")
    return KnowledgeClient(raw)
