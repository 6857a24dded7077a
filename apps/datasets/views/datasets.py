"""Knowledge bases: the list, create, settings, delete, and the Knowledge API keys."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.core.errors import DomainError
from apps.core.pages import run_action
from apps.datasets import selectors
from apps.datasets.forms import (
    DatasetForm,
    DatasetKeyForm,
    DeleteDatasetForm,
    ProcessRuleForm,
    RetrievalForm,
)
from apps.datasets.models import IndexingTechnique
from apps.datasets.services import datasets as services
from apps.datasets.services import documents
from apps.datasets.views import dataset_for, page_number
from apps.tenants.decorators import workspace_view
from apps.tenants.permissions import can


def _dataset_form(request, data=None, **kwargs) -> DatasetForm:
    return DatasetForm(
        data,
        members=selectors.dataset_member_choices(workspace=request.workspace),
        embedding_models=selectors.embedding_model_choices(workspace=request.workspace),
        **kwargs,
    )


@workspace_view("knowledge.view")
def dataset_list_view(request):
    keyword = request.GET.get("q", "")[:100]
    found = selectors.dataset_list(
        membership=request.membership, keyword=keyword, page=page_number(request), limit=24
    )
    context = {
        "page": found,
        "keyword": keyword,
        "can_manage": can(request.membership.role, "knowledge.manage"),
    }
    return render(request, "datasets/list.html", context)


@workspace_view("knowledge.manage")
def dataset_create_view(request):
    has_embedding = bool(selectors.embedding_model_choices(workspace=request.workspace))
    form = _dataset_form(
        request,
        request.POST or None,
        initial={
            "permission": "only_me",
            "indexing_technique": IndexingTechnique.HIGH_QUALITY
            if has_embedding
            else IndexingTechnique.ECONOMY,
        },
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                dataset = services.dataset_create(actor=request.membership, **form.service_kwargs())
            except DomainError as exc:
                form.add_error(
                    "name" if exc.code == "dataset_name_duplicate" else None, exc.message
                )
            else:
                messages.success(request, f"Knowledge base “{dataset.name}” created.")
                return redirect("dataset_documents", dataset_id=dataset.pk)
    context = {"form": form, "has_embedding": has_embedding}
    return render(request, "datasets/create.html", context, status=status)


def _index_identity(dataset) -> tuple[str, str, str]:
    return (dataset.indexing_technique, dataset.embedding_model_provider, dataset.embedding_model)


@workspace_view("knowledge.manage")
def dataset_settings_view(request, dataset_id):
    dataset = dataset_for(request, dataset_id)
    rerank_models = selectors.rerank_model_choices(workspace=request.workspace)
    model_value = (
        f"{dataset.embedding_model_provider}/{dataset.embedding_model}"
        if dataset.embedding_model
        else ""
    )
    initial = {
        "name": dataset.name,
        "description": dataset.description,
        "permission": dataset.permission,
        "members": [str(pk) for pk in dataset.members.values_list("pk", flat=True)],
        "indexing_technique": dataset.indexing_technique,
        "embedding_model": model_value,
    }
    data = request.POST or None
    form = _dataset_form(request, data, initial=initial)
    retrieval = RetrievalForm(
        data,
        rerank_models=rerank_models,
        initial=RetrievalForm.initial_from(dataset.retrieval_model or {}),
    )
    rules = ProcessRuleForm(data, initial=ProcessRuleForm.initial_from(dataset.process_rule or {}))
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid() and retrieval.is_valid() and rules.is_valid():
            before = _index_identity(dataset)
            try:
                updated = services.dataset_update(
                    actor=request.membership,
                    dataset=dataset,
                    **form.service_kwargs(),
                    retrieval_model=retrieval.retrieval_model(),
                    process_rule=rules.process_rule(),
                )
                # Chunks indexed for the old technique or model are indexed again.
                queued = 0
                if _index_identity(updated) != before:
                    queued = documents.dataset_reindex(actor=request.membership, dataset=updated)
            except DomainError as exc:
                form.add_error(
                    "name" if exc.code == "dataset_name_duplicate" else None, exc.message
                )
            else:
                note = f" {queued} document{'s are' if queued != 1 else ' is'} being re-indexed."
                messages.success(request, "Settings saved." + (note if queued else ""))
                return redirect("dataset_settings", dataset_id=dataset.pk)
    context = {
        "dataset": dataset,
        "form": form,
        "retrieval": retrieval,
        "rules": rules,
        "delete_form": DeleteDatasetForm(),
        "tab": "settings",
    }
    return render(request, "datasets/settings.html", context, status=status)


@require_POST
@workspace_view("knowledge.manage")
def dataset_delete_view(request, dataset_id):
    dataset = dataset_for(request, dataset_id)
    form = DeleteDatasetForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Type the knowledge base's name to confirm deletion.")
        return redirect("dataset_settings", dataset_id=dataset.pk)
    if run_action(
        request,
        services.dataset_delete,
        success=f"Knowledge base “{dataset.name}” was deleted.",
        actor=request.membership,
        dataset=dataset,
        confirm_name=form.cleaned_data["confirm_name"],
    ):
        return redirect("knowledge")
    return redirect("dataset_settings", dataset_id=dataset.pk)


@workspace_view("api_keys.manage")
def dataset_api_keys_view(request):
    form = DatasetKeyForm(request.POST or None)
    new_key = None  # shown in this response only; never stored
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                _, new_key = services.dataset_api_key_create(
                    actor=request.membership, name=form.cleaned_data["name"]
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                form, status = DatasetKeyForm(), 201
    context = {
        "form": form,
        "keys": selectors.dataset_api_key_list(workspace=request.workspace),
        "new_key": new_key,
        "api_base": request.build_absolute_uri("/v1"),
    }
    return render(request, "datasets/api_keys.html", context, status=status)


@require_POST
@workspace_view("api_keys.manage")
def dataset_api_key_revoke_view(request, api_key_id):
    run_action(
        request,
        services.dataset_api_key_revoke,
        success="Knowledge API key revoked.",
        actor=request.membership,
        api_key_id=api_key_id,
    )
    return redirect("dataset_api_keys")
