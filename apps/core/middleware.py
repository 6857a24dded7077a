"""Project middleware. Each works in both modes, so an async request (the gateway's
streams, websockets' HTTP side) never leaves the event loop just to pass through it."""

import re
import uuid

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.http import JsonResponse
from whitenoise.middleware import WhiteNoiseMiddleware

from apps.core.logging import request_id_var

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
API_PREFIXES = ("/api/", "/v1/")


class HybridMiddleware:
    """Base for middleware with `before(request)` and `after(request, response)` hooks
    that runs natively in sync and in async mode."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        self.before(request)
        return self.after(request, self.get_response(request))

    async def _acall(self, request):
        self.before(request)
        return self.after(request, await self.get_response(request))

    def before(self, request) -> None:
        pass

    def after(self, request, response):
        return response


class RequestIdMiddleware(HybridMiddleware):
    """Tags the request (and every log line it causes) with an id, echoed in X-Request-ID."""

    def before(self, request) -> None:
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        # Not reset afterwards: Django logs the response (4xx/5xx) after middleware returns,
        # and the next request on this thread or task sets its own id first.
        request_id_var.set(request.request_id)

    def after(self, request, response):
        response["X-Request-ID"] = request.request_id
        return response


class ApiMethodNotAllowedMiddleware(HybridMiddleware):
    """Ninja answers a wrong method with a bare text 405; API clients get our JSON error."""

    def after(self, request, response):
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


class ContentSecurityPolicyMiddleware(HybridMiddleware):
    """A strict CSP on every response that has not set its own (embeddable pages will)."""

    def after(self, request, response):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, asked only for /static/ paths: WhiteNoise itself is sync-only, and
    passing every async request through it would cost each one a thread hop."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        super().__init__(get_response)
        self._prefix = "/" + settings.STATIC_URL.lstrip("/")
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        return super().__call__(request)

    async def _acall(self, request):
        if request.path_info.startswith(self._prefix):
            found = await sync_to_async(self._find, thread_sensitive=False)(request.path_info)
            if found is not None:
                return await sync_to_async(self.serve, thread_sensitive=False)(found, request)
        return await self.get_response(request)

    def _find(self, path: str):
        return self.find_file(path) if self.autorefresh else self.files.get(path)
