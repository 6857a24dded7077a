"""Error pages: HTML for people, JSON {"code", "message"} under /api/ and /v1/."""

from django.http import JsonResponse
from django.shortcuts import render

from apps.core.middleware import API_PREFIXES


def _error(request, status: int, code: str, message: str):
    if request.path.startswith(API_PREFIXES):
        return JsonResponse({"code": code, "message": message}, status=status)
    return render(request, "error.html", {"status": status, "message": message}, status=status)


def not_found(request, exception=None):
    return _error(request, 404, "not_found", "We could not find that page.")


def forbidden(request, exception=None):
    message = str(exception) if exception and str(exception) else "You are not allowed to do that."
    return _error(request, 403, "forbidden", message)


def server_error(request):
    return _error(request, 500, "internal_error", "Something went wrong on our side.")
