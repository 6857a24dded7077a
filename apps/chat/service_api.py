"""Dify's Service API for apps under /v1/ (app API keys): chat-messages,
completion-messages, conversations, messages, feedbacks, parameters, files."""

from ninja import Router

router = Router(tags=["service api"])
