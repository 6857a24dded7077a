"""HTTP and websocket entry point, served by daphne."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)

from channels.auth import AuthMiddlewareStack  # noqa: E402 - needs Django set up first
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from apps.chat.consumers import WebAppConsumer  # noqa: E402
from apps.chat.debug_consumer import StudioDebugConsumer  # noqa: E402
from apps.core.api_handler import route_http  # noqa: E402
from apps.providers.consumers import PlaygroundConsumer  # noqa: E402
from apps.providers.gateway_asgi import with_fast_chat_completions  # noqa: E402

websocket_urlpatterns = [
    path("ws/playground/", PlaygroundConsumer.as_asgi()),
    path("ws/webapp/<str:code>/", WebAppConsumer.as_asgi()),
    path("ws/studio/<str:app_id>/debug/", StudioDebugConsumer.as_asgi()),
]

application = ProtocolTypeRouter(
    {
        # The gateway's streams skip the session/CSRF middleware they do not use; its
        # chat completions skip Django altogether.
        "http": with_fast_chat_completions(route_http(api_prefixes=("/v1/",))),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
