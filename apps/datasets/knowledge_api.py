"""Dify's Knowledge API under /v1/datasets (dataset API keys)."""

from ninja import Router

router = Router(tags=["knowledge api"])
