"""Studio → one app → Logs and Annotations: what people asked and got, with usage and
feedback; curated answers that annotation reply gives without calling the model.

Editors only (apps.edit): logs show what end users typed."""

from __future__ import annotations

from django.contrib import messages as flash
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.chat import logs
from apps.chat.services import messages as message_services
from apps.chat.views.studio import app_or_404, public_path
from apps.chat.views.studio_forms import AnnotateForm, AnnotationForm, LogFilterForm
from apps.core.errors import DomainError, NotFound
from apps.core.pages import run_action
from apps.tenants.decorators import workspace_view

PAGE_SIZE = 50


def _or_404(call, **kwargs):
    try:
        return call(**kwargs)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _rating(message) -> str:
    """The end user's rating, else a member's: like, dislike or ""."""
    ratings = {f.from_source: f.rating for f in message.feedbacks.all()}
    return ratings.get("user") or ratings.get("admin") or ""


@require_GET
@workspace_view("apps.edit")
def app_logs_view(request, app_id):
    app = app_or_404(request, app_id)
    form = LogFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_bound and form.is_valid() else {}
    rows = logs.message_log(
        app=app,
        q=(filters.get("q") or "").strip(),
        feedback=filters.get("feedback") or "",
        start=filters.get("start"),
        end=filters.get("end"),
        conversation_id=filters.get("conversation"),
    )
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    for message in page.object_list:
        message.rating = _rating(message)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "app": app,
        "tab": "logs",
        "public_path": public_path(app),
        "form": form,
        "page": page,
        "filtered": bool(filters and any(filters.values())),
        "query": query.urlencode(),
    }
    status = 400 if form.is_bound and not form.is_valid() else 200
    return render(request, "chat/studio/logs.html", context, status=status)


def _message_context(app, message, form: AnnotateForm) -> dict:
    thread = logs.conversation_thread(message=message)
    for item in thread:
        item.rating = _rating(item)
    return {
        "app": app,
        "tab": "logs",
        "public_path": public_path(app),
        "message": message,
        "thread": thread,
        "annotation_form": form,
    }


@require_GET
@workspace_view("apps.edit")
def app_message_view(request, app_id, message_id):
    app = app_or_404(request, app_id)
    message = _or_404(logs.message_get, app=app, message_id=message_id)
    form = AnnotateForm(initial={"answer": message.answer})
    return render(request, "chat/studio/message.html", _message_context(app, message, form))


@require_POST
@workspace_view("apps.edit")
def app_message_annotate_view(request, app_id, message_id):
    """Save the message's question with its answer (or the answer as edited here) as an
    annotation; a message marked twice updates its annotation."""
    app = app_or_404(request, app_id)
    message = _or_404(logs.message_get, app=app, message_id=message_id)
    form = AnnotateForm(request.POST)
    if form.is_valid():
        try:
            message_services.message_annotate(
                actor=request.membership,
                app=app,
                message_id=message.id,
                answer=form.cleaned_data["answer"],
            )
        except NotFound as exc:
            raise Http404(exc.message) from exc
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            flash.success(request, "Saved as an annotation: annotation reply can answer with it.")
            return redirect("app_message", app_id=app.id, message_id=message.id)
    return render(
        request, "chat/studio/message.html", _message_context(app, message, form), status=400
    )


# --- Annotations ----------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@workspace_view("apps.edit")
def app_annotations_view(request, app_id):
    app = app_or_404(request, app_id)
    form = AnnotationForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                message_services.annotation_create(
                    actor=request.membership, app=app, **form.cleaned_data
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                flash.success(request, "Annotation added.")
                return redirect("app_annotations", app_id=app.id)
    search = str(request.GET.get("q", ""))[:200].strip()
    page = Paginator(logs.annotation_list(app=app, q=search), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "app": app,
        "tab": "annotations",
        "public_path": public_path(app),
        "form": form,
        "page": page,
        "search": search,
        "reply_enabled": bool((app.config.get("annotation_reply") or {}).get("enabled")),
    }
    return render(request, "chat/studio/annotations.html", context, status=status)


@require_POST
@workspace_view("apps.edit")
def app_annotation_edit_view(request, app_id, annotation_id):
    app = app_or_404(request, app_id)
    form = AnnotationForm(request.POST)
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        flash.error(request, f"{field.capitalize()}: {errors[0]}")
        return redirect("app_annotations", app_id=app.id)
    run_action(
        request,
        message_services.annotation_update,
        success="Annotation saved.",
        actor=request.membership,
        app=app,
        annotation_id=annotation_id,
        **form.cleaned_data,
    )
    return redirect("app_annotations", app_id=app.id)


@require_POST
@workspace_view("apps.edit")
def app_annotation_delete_view(request, app_id, annotation_id):
    app = app_or_404(request, app_id)
    run_action(
        request,
        message_services.annotation_delete,
        success="Annotation deleted.",
        actor=request.membership,
        app=app,
        annotation_id=annotation_id,
    )
    return redirect("app_annotations", app_id=app.id)


urlpatterns = [
    path("apps/<uuid:app_id>/logs/", app_logs_view, name="app_logs"),
    path("apps/<uuid:app_id>/logs/<uuid:message_id>/", app_message_view, name="app_message"),
    path(
        "apps/<uuid:app_id>/logs/<uuid:message_id>/annotate/",
        app_message_annotate_view,
        name="app_message_annotate",
    ),
    path("apps/<uuid:app_id>/annotations/", app_annotations_view, name="app_annotations"),
    path(
        "apps/<uuid:app_id>/annotations/<uuid:annotation_id>/",
        app_annotation_edit_view,
        name="app_annotation_edit",
    ),
    path(
        "apps/<uuid:app_id>/annotations/<uuid:annotation_id>/delete/",
        app_annotation_delete_view,
        name="app_annotation_delete",
    ),
]
