"""Management API for knowledge bases under /api/ (workspace management key)."""

from ninja import Router

router = Router(tags=["knowledge"])
