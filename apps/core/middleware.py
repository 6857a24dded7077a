import re
import uuid

from django.http import JsonResponse

from apps.core.logging import request_id_var

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Tags the request (and every log line it causes) with an id, echoed in X-Request-ID."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        # Not reset afterwards: Django logs the response (4xx/5xx) after middleware returns,
        # and the next request on this thread or task sets its own id first.
        request_id_var.set(request_id)
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


API_PREFIXES = ("/api/", "/v1/")


class ApiMethodNotAllowedMiddleware:
    """Ninja answers a wrong method with a bare text 405; API clients get our JSON error."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 405 and request.path.startswith(API_PREFIXES):
            allowed = response.get("Allow", "")
            envelope = JsonResponse(
                {"code": "method_not_allowed", "message": f"Use one of: {allowed or 'none'}."},
                status=405,
            )
            if allowed:
                envelope["Allow"] = allowed
            return envelope
        return response


CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",  # no inline script: behaviour lives in static/js
        "style-src 'self' 'unsafe-inline'",  # Swagger UI and htmx set inline styles
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """A strict CSP on every response that has not set its own (embeddable pages will)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
