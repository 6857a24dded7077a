"""Dify-compatible APIs under /v1/: the Service API (app keys) and the Knowledge API
(dataset keys). Each router brings its own key check; errors are Dify's JSON
{"code", "message", "status"} so Dify's client SDKs read them unchanged.

The OpenAI-compatible gateway shares the /v1/ prefix (apps.providers.gateway); Django
tries this API's routes first and falls through to the gateway's."""

from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from apps.core.errors import DomainError, RateLimited

service_api = NinjaAPI(
    title="Orrery Service and Knowledge API (Dify-compatible)",
    version="1",
    urls_namespace="service",
    docs_url="/service-docs",
    openapi_url="/service-openapi.json",
)


def dify_error(request, status: int, code: str, message: str, **headers):
    body = {"code": code, "message": message, "status": status}
    response = service_api.create_response(request, body, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


@service_api.exception_handler(DomainError)
def on_domain_error(request, exc: DomainError):
    extra = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else {}
    return dify_error(request, exc.status, exc.code, exc.message, **extra)


@service_api.exception_handler(AuthenticationError)
def on_auth_error(request, exc):
    return dify_error(
        request,
        401,
        "unauthorized",
        "Access token is invalid. Send Authorization: Bearer <API key>.",
    )


@service_api.exception_handler(ValidationError)
def on_validation_error(request, exc: ValidationError):
    first = exc.errors[0] if exc.errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query"))
    message = f"{where}: {first.get('msg', 'invalid')}" if where else first.get("msg", "Invalid.")
    return dify_error(request, 400, "invalid_param", message)


@service_api.exception_handler(Http404)
def on_not_found(request, exc):
    return dify_error(request, 404, "not_found", str(exc) or "Not found.")


@service_api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    return dify_error(request, exc.status_code, "http_error", str(exc))


service_api.add_router("", "apps.chat.service_api.router")
service_api.add_router("", "apps.datasets.knowledge_api.router")
