"""Studio → Apps: the workspace's apps as cards, with create, duplicate, rename, delete,
search, filter by type, and import/export of Dify DSL files.

Editors build (apps.edit); normal members see the apps and open their web apps
(apps.use)."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from apps.chat import dsl, selectors
from apps.chat.models import AppMode
from apps.chat.services import apps as app_services
from apps.chat.views.studio_forms import (
    AppCreateForm,
    AppDeleteForm,
    AppEditForm,
    AppImportForm,
)
from apps.chat.visitors import site_path
from apps.core.errors import DomainError, NotFound
from apps.core.pages import run_action, safe_next
from apps.tenants.decorators import workspace_view
from apps.tenants.permissions import can

PAGE_SIZE = 24
COMING_MODES = [
    (AppMode.AGENT_CHAT, "Reasons step by step and calls tools."),
    (AppMode.ADVANCED_CHAT, "A chat driven by a workflow."),
    (AppMode.WORKFLOW, "Steps of models, knowledge and tools, run as one."),
]
MODE_BLURBS = {
    AppMode.CHAT: "A conversation with memory, for questions and answers.",
    AppMode.COMPLETION: "One input form, one generated text: summaries, drafts, translations.",
}


def app_or_404(request, app_id):
    try:
        return selectors.app_get(workspace=request.workspace, app_id=app_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def public_path(app) -> str:
    """The app's public web app (served by the web app pages)."""
    return site_path(app)


def _list_context(request, *, create_form=None, import_form=None, import_warnings=None) -> dict:
    search = str(request.GET.get("q", ""))[:100].strip()
    mode = str(request.GET.get("mode", ""))
    if mode not in AppMode.values:
        mode = ""
    apps = selectors.app_list(workspace=request.workspace, search=search, mode=mode)
    page = Paginator(apps, PAGE_SIZE).get_page(request.GET.get("page"))
    for app in page.object_list:
        app.public_path = public_path(app)
    editor = can(request.membership.role, "apps.edit")
    return {
        "page": page,
        "search": search,
        "mode": mode,
        "modes": AppMode.choices,
        "filtered": bool(search or mode),
        "editor": editor,
        "create_form": create_form or AppCreateForm(),
        "import_form": import_form or AppImportForm(),
        "import_warnings": import_warnings or [],
        "buildable": [(m, m.label, MODE_BLURBS[m]) for m in app_services.BUILDABLE_MODES],
        "coming": [(m, m.label, blurb) for m, blurb in COMING_MODES],
        "open_create": create_form is not None,
        "open_import": import_form is not None,
    }


@require_GET
@workspace_view("apps.use")
def app_list_view(request):
    return render(request, "chat/studio/app_list.html", _list_context(request))


@require_POST
@workspace_view("apps.edit")
def app_create_view(request):
    form = AppCreateForm(request.POST)
    if form.is_valid():
        try:
            app = app_services.app_create(actor=request.membership, **form.cleaned_data)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"“{app.name}” created. Choose its model and prompt.")
            return redirect("app_configure", app_id=app.id)
    context = _list_context(request, create_form=form)
    return render(request, "chat/studio/app_list.html", context, status=400)


@require_POST
@workspace_view("apps.edit")
def app_edit_view(request, app_id):
    """Rename, change the icon or the description (from the card or the app's header)."""
    app = app_or_404(request, app_id)
    form = AppEditForm(request.POST)
    back = safe_next(request, reverse("apps"))
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        messages.error(request, f"{form.fields[field].label}: {errors[0]}")
        return redirect(back)
    changes = dict(form.cleaned_data)
    changes["icon"] = changes["icon"] or app.icon
    run_action(
        request,
        app_services.app_update,
        success="App details saved.",
        actor=request.membership,
        app=app,
        **changes,
    )
    return redirect(back)


@require_POST
@workspace_view("apps.edit")
def app_duplicate_view(request, app_id):
    app = app_or_404(request, app_id)
    try:
        copy = app_services.app_duplicate(actor=request.membership, app=app)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("apps")
    messages.success(request, f"Copied as “{copy.name}”.")
    return redirect("apps")


@require_POST
@workspace_view("apps.edit")
def app_delete_view(request, app_id):
    app = app_or_404(request, app_id)
    form = AppDeleteForm(request.POST)
    if not form.is_valid() or form.cleaned_data["confirm_name"].strip() != app.name:
        messages.error(request, f"Type the app's name, “{app.name}”, to delete it.")
        return redirect(safe_next(request, reverse("apps")))
    name = app.name
    if run_action(
        request,
        app_services.app_delete,
        success=f"“{name}” and its conversations were deleted.",
        actor=request.membership,
        app=app,
    ):
        return redirect("apps")
    return redirect(safe_next(request, reverse("apps")))


@require_POST
@workspace_view("apps.edit")
def app_import_view(request):
    form = AppImportForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            app, warnings = dsl.app_import(
                actor=request.membership, yaml_text=form.cleaned_data["file"]
            )
        except DomainError as exc:
            form.add_error("file", exc.message)
        else:
            messages.success(request, f"“{app.name}” imported.")
            for warning in warnings:
                messages.warning(request, warning)
            return redirect("app_configure", app_id=app.id)
    context = _list_context(request, import_form=form)
    return render(request, "chat/studio/app_list.html", context, status=400)


@require_GET
@workspace_view("apps.edit")
def app_export_view(request, app_id):
    app = app_or_404(request, app_id)
    text = dsl.app_export(app=app)
    response = HttpResponse(text, content_type="application/x-yaml; charset=utf-8")
    safe_name = "".join(c if c.isalnum() or c in "-_" else "-" for c in app.name)[:60] or "app"
    response["Content-Disposition"] = f'attachment; filename="{safe_name}.yml"'
    return response


urlpatterns = [
    path("apps/", app_list_view, name="apps"),
    path("apps/new/", app_create_view, name="app_create"),
    path("apps/<uuid:app_id>/details/", app_edit_view, name="app_edit"),
    path("apps/<uuid:app_id>/duplicate/", app_duplicate_view, name="app_duplicate"),
    path("apps/<uuid:app_id>/delete/", app_delete_view, name="app_delete"),
    path("apps/import/", app_import_view, name="app_import"),
    path("apps/<uuid:app_id>/export/", app_export_view, name="app_export"),
]
