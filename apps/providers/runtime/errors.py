"""One error family for every provider: callers, retries and load balancing act on the
class; the provider's own words are kept in `provider_message`."""

from __future__ import annotations

from apps.core.errors import DomainError


class InvokeError(DomainError):
    """A model call failed. `status` is what our API answers, not the upstream status."""

    code = "provider_error"
    status = 502

    def __init__(
        self,
        message: str,
        *,
        provider_message: str = "",
        upstream_status: int | None = None,
    ):
        super().__init__(message)
        self.provider_message = provider_message
        self.upstream_status = upstream_status

    def __str__(self) -> str:
        if self.provider_message and self.provider_message not in self.message:
            return f"{self.message}: {self.provider_message}"
        return self.message


class InvokeConnectionError(InvokeError):
    """Could not reach the provider, or the connection dropped mid-way."""

    code = "provider_connection_error"
    status = 502


class InvokeServerUnavailableError(InvokeError):
    """The provider answered 5xx or said it is overloaded."""

    code = "provider_unavailable"
    status = 503


class InvokeRateLimitError(InvokeError):
    """429 or a quota exhausted. `retry_after` in seconds when the provider said."""

    code = "provider_rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InvokeAuthorizationError(InvokeError):
    """The provider refused the credentials (401/403)."""

    code = "provider_auth_failed"
    status = 400


class InvokeBadRequestError(InvokeError):
    """The provider refused the request itself (400/404/422): bad model, bad parameters."""

    code = "provider_bad_request"
    status = 400


RETRYABLE = (InvokeConnectionError, InvokeServerUnavailableError, InvokeRateLimitError)
"""Errors worth trying again, or on another credential set, before any output was sent."""
