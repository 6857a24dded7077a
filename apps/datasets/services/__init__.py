"""Writes for knowledge bases: `datasets` (the knowledge bases themselves, their dataset API
keys) and `documents` (adding, indexing and editing documents and their chunks)."""
