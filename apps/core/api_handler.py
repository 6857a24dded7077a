"""A lean Django handler for token-authenticated API paths (the /v1/ gateway).

Django's own session, CSRF, message and clickjacking middleware are sync-only: in async
mode each of them costs every request a hop onto one shared thread, so under concurrent
streams they queue behind each other. Bearer-key API calls use none of them, so these
paths run through a chain of our async-capable middleware only."""

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.utils.module_loading import import_string

API_MIDDLEWARE = [
    "apps.core.middleware.RequestIdMiddleware",
    "apps.core.middleware.ApiMethodNotAllowedMiddleware",
    "apps.core.middleware.ContentSecurityPolicyMiddleware",
]


class ApiASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response_async)
        for path in reversed(API_MIDDLEWARE):
            middleware = import_string(path)
            if not middleware.async_capable:
                raise TypeError(f"{path} must be async-capable to serve API paths")
            handler = convert_exception_to_response(middleware(handler))
        self._middleware_chain = handler


class SiteASGIHandler(ASGIHandler):
    """The pages: sync views behind Django's sync-only middleware. Run in async mode, each
    of those middleware would hop to a thread and back twice per request; built in sync
    mode, the whole chain runs in one hop."""

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)


def route_http(api_prefixes: tuple[str, ...]):
    """An ASGI app sending API paths to the lean handler and the rest to the site's."""
    api_app, site_app = ApiASGIHandler(), SiteASGIHandler()

    async def app(scope, receive, send):
        handler = api_app if scope["path"].startswith(api_prefixes) else site_app
        await handler(scope, receive, send)

    return app
