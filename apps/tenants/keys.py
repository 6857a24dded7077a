"""Secret tokens shown once and stored only as a SHA-256 digest.

The tokens carry 256 bits of randomness, so a fast hash is enough and lets a key be
found by its digest in one indexed lookup."""

import hashlib
import secrets


def new_token(prefix: str) -> str:
    return f"{prefix}{secrets.token_urlsafe(32)}"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
