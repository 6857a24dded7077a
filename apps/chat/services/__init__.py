"""Writes for apps and what happens in them. One module per entity: apps.py (create,
update, duplicate, delete, public link), and beside it the conversation, message,
feedback and annotation services."""
