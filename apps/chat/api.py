"""Management API for apps under /api/ (workspace management key)."""

from ninja import Router

router = Router(tags=["apps"])
