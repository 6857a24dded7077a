"""The public web apps: /chat/<code> and /completion/<code>. Anyone with the link may use
an enabled app (workspace members only when the app says so); a visitor sees only their
own conversations and results (apps/chat/visitors.py). Answers stream over the websocket
in apps/chat/consumers.py; these views render pages and take the small writes.

These pages may be framed by other sites (the embed snippets); the rest of Orrery may not.
Their POSTs carry the visitor token header instead of a CSRF cookie, which a framed page
on another site may not have."""

from __future__ import annotations

import io
import json
from functools import wraps
from urllib.parse import urlencode

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from apps.chat import batch, visitors
from apps.chat.generation.inputs import form_fields
from apps.chat.models import App
from apps.chat.services import conversations, messages, saved_messages
from apps.chat.visitors import VISITOR_HEADER, LoginRequired, Visitor
from apps.core.errors import DomainError, NotFound, PermissionDenied, RateLimited
from apps.core.middleware import CONTENT_SECURITY_POLICY
from apps.core.pages import client_ip

CONVERSATIONS_SHOWN = 50
SAVED_SHOWN = 50

# The same policy as every page, except that any site may frame these.
FRAMEABLE_POLICY = CONTENT_SECURITY_POLICY.replace("frame-ancestors 'none'", "frame-ancestors *")


def frameable(response: HttpResponse) -> HttpResponse:
    response.xframe_options_exempt = True
    response["Content-Security-Policy"] = FRAMEABLE_POLICY
    return response


def webapp_view(kind: str, *, write: bool = False):
    """A public web app page or action. Resolves the app from the link's code (404 when
    unknown or disabled), the page kind from the app's mode, and the visitor. Writes must
    carry the visitor token header: no token, no change."""

    def decorate(view):
        @csrf_exempt  # the visitor token header does the CSRF token's job (module doc)
        @wraps(view)
        def wrapped(request, code: str, *args, **kwargs):
            try:
                app = visitors.site_app(code=code)
            except NotFound as exc:
                raise Http404(exc.message) from exc
            if (kind == "chat") != (app.mode in visitors.CHAT_MODES):
                if write:
                    raise Http404("This app link is of another kind.")
                return redirect(visitors.site_path(app))
            token = request.headers.get(VISITOR_HEADER, "")
            if not token and not write:  # a plain link (the results download) carries it
                token = request.GET.get(visitors.VISITOR_PARAM, "")
            try:
                visitor = visitors.visitor_resolve(
                    app=app,
                    session=request.session,
                    user=request.user,
                    token=token,
                    create=not write,
                    client=client_ip(request),
                )
            except RateLimited as exc:
                response = HttpResponse(exc.message, status=429)
                response["Retry-After"] = str(exc.retry_after)
                return response
            except LoginRequired:
                if write:
                    return HttpResponse("Sign in to use this app.", status=401)
                return redirect_to_login(request.get_full_path())
            except PermissionDenied as exc:
                raise DjangoPermissionDenied(exc.message) from exc
            if write and (visitor is None or not token or visitor.token != token):
                return HttpResponse("This page has expired: reload it.", status=403)
            request.visitor = visitor
            try:
                response = view(request, visitor, *args, **kwargs)
            except NotFound as exc:
                raise Http404(exc.message) from exc
            except DomainError as exc:
                response = HttpResponseBadRequest(exc.message)
            return frameable(response)

        return wrapped

    return decorate


# --- Shared context ----------------------------------------------------------------------------


def _form_fields(app: App) -> list[dict]:
    """The app's input variables (user_input_form, read as the pipeline reads it) as form
    controls named input_<variable>."""
    return [
        {
            "kind": kind,
            "name": "input_" + str(spec["variable"]),
            "variable": str(spec["variable"]),
            "label": spec.get("label") or spec["variable"],
            "required": bool(spec.get("required")),
            "max_length": spec.get("max_length") or "",
            "options": [str(o) for o in spec.get("options") or []],
            "default": spec.get("default") or "",
        }
        for kind, spec in form_fields(app.config)
    ]


def _page_context(visitor: Visitor) -> dict:
    app = visitor.app
    return {
        "app": app,
        "visitor": visitor,
        "visitor_headers_json": json.dumps({VISITOR_HEADER: visitor.token}),
        "fields": _form_fields(app),
        "opening_statement": app.config.get("opening_statement") or "",
        "suggested_questions": [q for q in app.config.get("suggested_questions") or [] if q],
        "base_path": visitors.site_path(app),
    }


def _ws_url(visitor: Visitor, **params) -> str:
    query = urlencode({visitors.VISITOR_PARAM: visitor.token, **params})
    return f"/ws/webapp/{visitor.app.site_code}/?{query}"


# --- Chat --------------------------------------------------------------------------------------


def _conversation_page(request, visitor: Visitor) -> dict:
    """One page of the visitor's conversations, newest first (?page=2 for older ones)."""
    try:
        number = min(max(int(request.GET.get("page", 1)), 1), 10_000)
    except (TypeError, ValueError):
        number = 1
    start = (number - 1) * CONVERSATIONS_SHOWN
    rows = list(
        visitors.visitor_conversations(visitor=visitor)[start : start + CONVERSATIONS_SHOWN + 1]
    )
    return {
        "conversations": rows[:CONVERSATIONS_SHOWN],
        "older_page": number + 1 if len(rows) > CONVERSATIONS_SHOWN else None,
        "newer_page": number - 1 if number > 1 else None,
    }


def _chat_page(request, visitor: Visitor, conversation=None):
    turns = visitors.conversation_thread(conversation=conversation) if conversation else []
    visitors.attach_ratings(turns)
    running = [str(t.pk) for t in turns if t.status == "running"]
    params = {}
    if conversation is not None:
        params["conversation"] = str(conversation.pk)
    if running:
        params["watch"] = ",".join(running)
    context = {
        **_page_context(visitor),
        **_conversation_page(request, visitor),
        "conversation": conversation,
        "turns": turns,
        "last_turn": turns[-1] if turns else None,
        "ws_url": _ws_url(visitor, **params),
    }
    return render(request, "chat/webapp_chat.html", context)


@require_GET
@webapp_view("chat")
def chat_view(request, visitor: Visitor):
    return _chat_page(request, visitor)


@require_GET
@webapp_view("chat")
def chat_conversation_view(request, visitor: Visitor, conversation_id):
    conversation = visitors.visitor_conversation(visitor=visitor, conversation_id=conversation_id)
    return _chat_page(request, visitor, conversation)


def _conversation_list(request, visitor: Visitor, current_id=None):
    return render(
        request,
        "chat/_webapp_conversations.html",
        {
            **_conversation_page(request, visitor),
            "current_id": current_id,
            "base_path": visitors.site_path(visitor.app),
        },
    )


@require_POST
@webapp_view("chat", write=True)
def conversation_rename_view(request, visitor: Visitor, conversation_id):
    conversations.conversation_rename(
        app=visitor.app,
        end_user=visitor.end_user,
        conversation_id=conversation_id,
        name=request.POST.get("name", ""),
    )
    return _conversation_list(request, visitor, current_id=request.POST.get("current"))


@require_POST
@webapp_view("chat", write=True)
def conversation_delete_view(request, visitor: Visitor, conversation_id):
    conversations.conversation_delete(
        app=visitor.app, end_user=visitor.end_user, conversation_id=conversation_id
    )
    if request.POST.get("current") == str(conversation_id):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = visitors.site_path(visitor.app)
        return response
    return _conversation_list(request, visitor, current_id=request.POST.get("current"))


@require_POST
@webapp_view("chat", write=True)
def message_feedback_view(request, visitor: Visitor, message_id):
    message = visitors.visitor_message(visitor=visitor, message_id=message_id)
    feedback = messages.message_feedback(
        app=visitor.app,
        end_user=visitor.end_user,
        message_id=message.pk,
        rating=request.POST.get("rating") or None,  # empty: take the rating back
        content=request.POST.get("content", ""),
    )
    return render(
        request,
        "chat/_webapp_feedback.html",
        {
            "turn": message,
            "rating": feedback.rating if feedback else "",
            "base_path": visitors.site_path(visitor.app),
        },
    )


# --- Text generator ----------------------------------------------------------------------------


def _saved(visitor: Visitor):
    return list(saved_messages.saved_message_list(visitor=visitor)[:SAVED_SHOWN])


@require_GET
@webapp_view("completion")
def completion_view(request, visitor: Visitor):
    context = {
        **_page_context(visitor),
        "saved": _saved(visitor),
        "batches": list(batch.batch_list(visitor=visitor)[:5]),
        "ws_url": _ws_url(visitor),
        "max_rows": batch.MAX_ROWS,
    }
    return render(request, "chat/webapp_completion.html", context)


@require_POST
@webapp_view("completion", write=True)
def saved_add_view(request, visitor: Visitor):
    message = visitors.visitor_message(visitor=visitor, message_id=request.POST.get("message_id"))
    saved_messages.saved_message_add(visitor=visitor, message=message)
    return render(
        request,
        "chat/_webapp_saved.html",
        {"saved": _saved(visitor), "base_path": visitors.site_path(visitor.app), "oob": False},
    )


@require_POST
@webapp_view("completion", write=True)
def saved_remove_view(request, visitor: Visitor, message_id):
    message = visitors.visitor_message(visitor=visitor, message_id=message_id)
    saved_messages.saved_message_remove(visitor=visitor, message=message)
    return render(
        request,
        "chat/_webapp_saved.html",
        {"saved": _saved(visitor), "base_path": visitors.site_path(visitor.app)},
    )


@require_POST
@webapp_view("completion", write=True)
def batch_start_view(request, visitor: Visitor):
    upload = request.FILES.get("file")
    context = {"base_path": visitors.site_path(visitor.app), "max_rows": batch.MAX_ROWS}
    try:
        run = batch.batch_start(visitor=visitor, upload=upload)
    except DomainError as exc:
        context["batch_error"] = exc.message
        return render(request, "chat/_webapp_batch.html", context, status=200)
    return render(request, "chat/_webapp_batch.html", {**context, "run": run})


@require_GET
@webapp_view("completion")
def batch_progress_view(request, visitor: Visitor, batch_id):
    run = batch.batch_get(visitor=visitor, batch_id=batch_id)
    context = {"base_path": visitors.site_path(visitor.app), "run": run, "max_rows": batch.MAX_ROWS}
    response = render(request, "chat/_webapp_batch.html", context)
    if run.status in (run.Status.DONE, run.Status.FAILED):
        response.status_code = 286 if request.htmx else 200  # htmx: stop polling
    return response


@require_GET
@webapp_view("completion")
def batch_results_view(request, visitor: Visitor, batch_id):
    run = batch.batch_get(visitor=visitor, batch_id=batch_id)
    out = io.StringIO()
    batch.results_csv(run=run, out=out)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="results-{run.pk}.csv"'
    return response


urlpatterns = [
    path("chat/<str:code>", chat_view, name="webapp_chat"),
    path(
        "chat/<str:code>/conversations/<uuid:conversation_id>",
        chat_conversation_view,
        name="webapp_conversation",
    ),
    path(
        "chat/<str:code>/conversations/<uuid:conversation_id>/rename",
        conversation_rename_view,
        name="webapp_conversation_rename",
    ),
    path(
        "chat/<str:code>/conversations/<uuid:conversation_id>/delete",
        conversation_delete_view,
        name="webapp_conversation_delete",
    ),
    path(
        "chat/<str:code>/messages/<uuid:message_id>/feedback",
        message_feedback_view,
        name="webapp_feedback",
    ),
    path("completion/<str:code>", completion_view, name="webapp_completion"),
    path("completion/<str:code>/saved", saved_add_view, name="webapp_saved_add"),
    path(
        "completion/<str:code>/saved/<uuid:message_id>/remove",
        saved_remove_view,
        name="webapp_saved_remove",
    ),
    path("completion/<str:code>/batch", batch_start_view, name="webapp_batch_start"),
    path(
        "completion/<str:code>/batch/<uuid:batch_id>",
        batch_progress_view,
        name="webapp_batch",
    ),
    path(
        "completion/<str:code>/batch/<uuid:batch_id>/results.csv",
        batch_results_view,
        name="webapp_batch_results",
    ),
]
