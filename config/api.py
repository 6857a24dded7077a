"""The management API at /api/: one NinjaAPI, each app's router mounted here.

Errors are always JSON {"code": ..., "message": ...} with a 4xx status."""

from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from apps.core.errors import DomainError, RateLimited
from apps.tenants.auth import WorkspaceApiKey

api = NinjaAPI(
    title="Orrery management API",
    version="1",
    urls_namespace="api",
    auth=WorkspaceApiKey(),
    docs_url="/docs",
    openapi_url="/openapi.json",
)


def error_response(request, status: int, code: str, message: str, **headers):
    response = api.create_response(request, {"code": code, "message": message}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


@api.exception_handler(DomainError)
def on_domain_error(request, exc: DomainError):
    extra = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else {}
    return error_response(request, exc.status, exc.code, exc.message, **extra)


@api.exception_handler(AuthenticationError)
def on_auth_error(request, exc):
    return error_response(
        request, 401, "unauthorized", "A valid API key is required: Authorization: Bearer <key>."
    )


@api.exception_handler(ValidationError)
def on_validation_error(request, exc: ValidationError):
    first = exc.errors[0] if exc.errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query"))
    message = f"{where}: {first.get('msg', 'invalid')}" if where else first.get("msg", "Invalid.")
    return error_response(request, 400, "invalid_param", message)


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return error_response(request, 404, "not_found", "Not found.")


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    return error_response(request, exc.status_code, "http_error", str(exc))


api.add_router("", "apps.core.api.router")
api.add_router("", "apps.tenants.api.router")
api.add_router("", "apps.providers.api.router")
api.add_router("", "apps.chat.api.router")
api.add_router("", "apps.datasets.api.router")
