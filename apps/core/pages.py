"""Glue between service calls and server-rendered pages."""

from collections.abc import Callable

from django.contrib import messages
from django.http import Http404, HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

from apps.core.errors import DomainError, NotFound


def run_action(request: HttpRequest, action: Callable, *, success: str = "", **kwargs) -> bool:
    """Call a service; flash its message on a domain error. A foreign id is a 404."""
    try:
        action(**kwargs)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except DomainError as exc:
        messages.error(request, exc.message)
        return False
    if success:
        messages.success(request, success)
    return True


def safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


def client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"
