"""Studio → one app: the configuration page (model, prompt, variables, features, knowledge)
beside its debug pane, and the publishing page (public link, Service API, keys, limits).

Only editors reach these pages (apps.edit)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.chat import keys as app_keys
from apps.chat.embedding import embed_snippets
from apps.chat.fallbacks import MAX_FALLBACKS, fallback_refs, model_label
from apps.chat.models import AppMode
from apps.chat.services import apps as app_services
from apps.chat.services import messages as message_services
from apps.chat.views.studio import app_or_404, public_path
from apps.chat.views.studio_forms import (
    MODERATION_TYPES,
    RETRIEVAL_MODES,
    VARIABLE_TYPES,
    ApiKeyNameForm,
    AppDeleteForm,
    AppEditForm,
    ConfigForm,
    ConfigResult,
    PublishForm,
    VariableRow,
    knowledge_choices,
    parameter_controls_with,
    usable_picks,
    variable_rows,
)
from apps.chat.views.webapp import _form_fields as webapp_fields
from apps.core.errors import DomainError, NotFound
from apps.core.pages import run_action
from apps.datasets.app_retrieval import attached_dataset_ids
from apps.datasets.retrieval import DEFAULT_TOP_K
from apps.providers.views.playground import model_choice, model_choices
from apps.tenants.decorators import workspace_view


def _model_value(config: dict) -> str:
    model = config.get("model") or {}
    if model.get("provider") and model.get("name"):
        return f"{model['provider']}/{model['name']}"
    return ""


def _get(config: dict, *keys, default=None):
    for key in keys:
        if not isinstance(config, dict):
            return default
        config = config.get(key)
    return default if config is None else config


def _config_context(
    request: HttpRequest,
    app,
    *,
    config: dict,
    rows: list[VariableRow],
    params: dict | None = None,
    errors: dict | None = None,
) -> dict:
    workspace = request.workspace
    choices = model_choices(workspace=workspace)
    value = _model_value(config)
    chosen = model_choice(choices, value)
    if chosen is None and not value and choices:
        chosen = choices[0]
    saved_params = _get(config, "model", "completion_params", default={})
    controls = parameter_controls_with(chosen, params if params is not None else saved_params)
    next_index = max([row.index for row in rows], default=-1) + 1
    moderation = _get(config, "sensitive_word_avoidance", default={})
    moderation_model = _get(moderation, "config", "model", default={})
    embedding = _get(config, "annotation_reply", "embedding_model", default={})
    knowledge = _get(config, "dataset_configs", default={})
    knowledge = knowledge if isinstance(knowledge, dict) else {}
    attached = {str(pk) for pk in attached_dataset_ids(knowledge)}
    rerank = knowledge.get("reranking_model") or {}
    stop = [s.replace("\n", "\\n") for s in _get(config, "stop", default=[]) if isinstance(s, str)]
    return {
        "app": app,
        "tab": "configure",
        "public_path": public_path(app),
        "config": config,
        "choices": choices,
        "chosen": chosen,
        "model_missing": bool(value) and chosen is None,
        "model_value": value,
        "controls": controls,
        **_fallbacks_context(choices, config),
        "rows": rows,
        "blank_row": VariableRow(index=next_index, required=False),
        "template_row": VariableRow(index="__i__", required=False),
        "variable_types": VARIABLE_TYPES,
        "errors": errors or {},
        "moderation": moderation,
        "moderation_types": MODERATION_TYPES,
        "moderation_model": (
            f"{moderation_model.get('provider')}/{moderation_model.get('name')}"
            if isinstance(moderation_model, dict) and moderation_model.get("provider")
            else ""
        ),
        "moderation_picks": usable_picks(workspace=workspace, model_type="moderation"),
        "embedding_value": (
            f"{embedding.get('embedding_provider_name')}/{embedding.get('embedding_model_name')}"
            if isinstance(embedding, dict) and embedding.get("embedding_provider_name")
            else ""
        ),
        "embedding_picks": usable_picks(workspace=workspace, model_type="text-embedding"),
        "datasets": [
            {"dataset": d, "attached": str(d.id) in attached}
            for d in knowledge_choices(membership=request.membership, config=config)
        ],
        "knowledge": knowledge,
        "retrieval_modes": RETRIEVAL_MODES,
        "default_top_k": DEFAULT_TOP_K,
        "rerank_value": (
            f"{rerank.get('reranking_provider_name')}/{rerank.get('reranking_model_name')}"
            if isinstance(rerank, dict) and rerank.get("reranking_provider_name")
            else ""
        ),
        "rerank_picks": usable_picks(workspace=workspace, model_type="rerank"),
        "stop_text": "\n".join(stop),
        "suggested_text": "\n".join(_get(config, "suggested_questions", default=[])),
        "is_chat": app.mode == AppMode.CHAT,
        # The saved input variables, drawn as the web app draws them, for the preview.
        "fields": webapp_fields(app),
        **_header_forms(app),
    }


def _fallbacks_context(choices: list, config: dict) -> dict:
    """The fallback list as the page draws it, and the models that can still be added."""
    offered = {choice.value for choice in choices}
    listed = [
        {"value": model_label(ref), "available": model_label(ref) in offered}
        for ref in fallback_refs(config)
    ]
    taken = {item["value"] for item in listed} | {_model_value(config)}
    return {
        "fallbacks": listed,
        "fallback_picks": [choice for choice in choices if choice.value not in taken],
        "fallbacks_full": len(listed) >= MAX_FALLBACKS,
        "max_fallbacks": MAX_FALLBACKS,
    }


def _fallbacks_redrawn(request: HttpRequest, app, result: ConfigResult) -> HttpResponse:
    """After an add, move or remove button: the list again (just it, for htmx), with only
    its own error; nothing is saved until "Save configuration"."""
    errors = {"fallbacks": result.errors["fallbacks"]} if "fallbacks" in result.errors else {}
    status = 400 if errors else 200
    if request.htmx:
        choices = model_choices(workspace=request.workspace)
        context = {"app": app, "errors": errors, **_fallbacks_context(choices, result.config)}
        return render(request, "chat/studio/_fallbacks.html", context, status=status)
    context = _config_context(
        request, app, config=result.config, rows=result.rows, params=result.params, errors=errors
    )
    return render(request, "chat/studio/configure.html", context, status=status)


def _header_forms(app) -> dict:
    """The rename and delete forms of the app's header, on each of its pages."""
    return {
        "edit_form": AppEditForm(
            initial={"name": app.name, "icon": app.icon, "description": app.description}
        ),
        "delete_form": AppDeleteForm(),
    }


@require_http_methods(["GET", "POST"])
@workspace_view("apps.edit")
def app_configure_view(request, app_id):
    app = app_or_404(request, app_id)
    if request.method == "GET":
        context = _config_context(
            request, app, config=app.config, rows=variable_rows(app.config.get("user_input_form"))
        )
        return render(request, "chat/studio/configure.html", context)
    result = ConfigForm(app=app, membership=request.membership, data=request.POST).read()
    if result.fallback_edit:
        return _fallbacks_redrawn(request, app, result)
    if result.valid:
        try:
            app_services.app_update(actor=request.membership, app=app, config=result.config)
        except DomainError as exc:
            result.errors["form"] = exc.message
        else:
            messages.success(request, "Configuration saved.")
            return redirect("app_configure", app_id=app.id)
    context = _config_context(
        request,
        app,
        config=result.config,
        rows=result.rows,
        params=result.params,
        errors=result.errors,
    )
    return render(request, "chat/studio/configure.html", context, status=400)


@require_GET
@workspace_view("apps.edit")
def app_parameters_view(request, app_id):
    """The parameter controls of the model just picked (an htmx swap)."""
    app = app_or_404(request, app_id)
    chosen = model_choice(model_choices(workspace=request.workspace), request.GET.get("model"))
    saved = _get(app.config, "model", "completion_params", default={})
    same = chosen is not None and chosen.value == _model_value(app.config)
    controls = parameter_controls_with(chosen, saved if same else {})
    return render(request, "providers/playground_parameters.html", {"controls": controls})


# --- Publishing --------------------------------------------------------------------------


def _publish_context(request, app, *, form=None, key_form=None, new_key: str = "") -> dict:
    return {
        "app": app,
        "tab": "publish",
        "public_path": public_path(app),
        "public_url": request.build_absolute_uri(public_path(app)),
        "api_base": request.build_absolute_uri("/v1"),
        "form": form
        or PublishForm(
            initial={
                "enable_site": app.enable_site,
                "site_requires_login": app.site_requires_login,
                "enable_api": app.enable_api,
                "rate_limit_per_minute": app.rate_limit_per_minute,
                "end_user_rate_limit_per_minute": app.end_user_rate_limit_per_minute,
                "max_active_requests": app.max_active_requests,
            }
        ),
        "key_form": key_form or ApiKeyNameForm(),
        "keys": app_keys.app_api_keys(app=app).order_by("-created_at"),
        "new_key": new_key,
        "embed": embed_snippets(app=app, site_url=request.build_absolute_uri("/")),
        **_header_forms(app),
    }


@require_http_methods(["GET", "POST"])
@workspace_view("apps.edit")
def app_publish_view(request, app_id):
    app = app_or_404(request, app_id)
    if request.method == "GET":
        return render(request, "chat/studio/publish.html", _publish_context(request, app))
    form = PublishForm(request.POST)
    if form.is_valid():
        if run_action(
            request,
            app_services.app_update,
            success="Publishing settings saved.",
            actor=request.membership,
            app=app,
            **form.cleaned_data,
        ):
            return redirect("app_publish", app_id=app.id)
    context = _publish_context(request, app, form=form)
    return render(request, "chat/studio/publish.html", context, status=400)


@require_POST
@workspace_view("apps.edit")
def app_site_regenerate_view(request, app_id):
    app = app_or_404(request, app_id)
    run_action(
        request,
        app_services.app_site_regenerate,
        success="A new public link is live; the old one no longer works.",
        actor=request.membership,
        app=app,
    )
    return redirect("app_publish", app_id=app.id)


@require_POST
@workspace_view("apps.edit")
def app_key_create_view(request, app_id):
    app = app_or_404(request, app_id)
    form = ApiKeyNameForm(request.POST)
    if form.is_valid():
        try:
            _, raw = app_keys.app_api_key_create(
                actor=request.membership, app=app, name=form.cleaned_data["name"]
            )
        except DomainError as exc:
            form.add_error("name", exc.message)
        else:
            context = _publish_context(request, app, new_key=raw)
            return render(request, "chat/studio/publish.html", context, status=201)
    context = _publish_context(request, app, key_form=form)
    return render(request, "chat/studio/publish.html", context, status=400)


@require_POST
@workspace_view("apps.edit")
def app_key_revoke_view(request, app_id, key_id):
    app = app_or_404(request, app_id)
    run_action(
        request,
        app_keys.app_api_key_revoke,
        success="Key revoked: programs using it stop working at once.",
        actor=request.membership,
        app=app,
        key_id=key_id,
    )
    return redirect("app_publish", app_id=app.id)


@require_POST
@workspace_view("apps.edit")
def app_debug_feedback_view(request, app_id, message_id):
    """Like or dislike a preview answer (the web app's feedback control, as a member)."""
    app = app_or_404(request, app_id)
    rating = request.POST.get("rating") or None
    content = request.POST.get("content", "")
    try:
        feedback = message_services.message_feedback(
            app=app,
            message_id=message_id,
            rating=rating,
            content=content if isinstance(content, str) else "",
            actor=request.membership,
        )
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except DomainError as exc:
        return HttpResponse(exc.message, status=400)
    turn = message_services.message_get(app=app, end_user=None, message_id=message_id)
    context = {
        "turn": turn,
        "rating": feedback.rating if feedback else "",
        "base_path": f"/apps/{app.pk}/debug",
    }
    return render(request, "chat/_webapp_feedback.html", context)


urlpatterns = [
    path("apps/<uuid:app_id>/", app_configure_view, name="app_configure"),
    path("apps/<uuid:app_id>/parameters/", app_parameters_view, name="app_parameters"),
    path("apps/<uuid:app_id>/publish/", app_publish_view, name="app_publish"),
    path(
        "apps/<uuid:app_id>/publish/regenerate/",
        app_site_regenerate_view,
        name="app_site_regenerate",
    ),
    path("apps/<uuid:app_id>/keys/", app_key_create_view, name="app_key_create"),
    path(
        "apps/<uuid:app_id>/keys/<uuid:key_id>/revoke/",
        app_key_revoke_view,
        name="app_key_revoke",
    ),
    path(
        "apps/<uuid:app_id>/debug/messages/<uuid:message_id>/feedback",
        app_debug_feedback_view,
        name="app_debug_feedback",
    ),
]
