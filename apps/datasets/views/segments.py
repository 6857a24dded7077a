"""A document's chunks: list and search, add, edit (re-embeds), enable/disable, delete."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.core.errors import DomainError, NotFound
from apps.datasets import selectors
from apps.datasets.forms import SegmentForm
from apps.datasets.services import segments
from apps.datasets.views import dataset_for, page_number
from apps.tenants.decorators import workspace_view
from apps.tenants.permissions import can


def _document_for(request, dataset_id, document_id):
    dataset = dataset_for(request, dataset_id)
    try:
        return dataset, selectors.document_get(dataset=dataset, document_id=document_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _segment_for(request, dataset_id, document_id, segment_id):
    dataset, document = _document_for(request, dataset_id, document_id)
    try:
        return dataset, document, selectors.segment_get(document=document, segment_id=segment_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _enabled_filter(value: str) -> bool | None:
    return {"enabled": True, "disabled": False}.get(value)


@workspace_view("knowledge.view")
def segment_list_view(request, dataset_id, document_id):
    dataset, document = _document_for(request, dataset_id, document_id)
    form = SegmentForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if not can(request.membership.role, "knowledge.manage"):
            raise Http404("Not found.")
        status = 400
        if form.is_valid():
            try:
                segments.segment_create(
                    actor=request.membership,
                    document=document,
                    content=form.cleaned_data["content"],
                    keywords=form.keyword_list(),
                )
            except NotFound as exc:
                raise Http404(exc.message) from exc
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, "Chunk added.")
                return redirect("document_segments", dataset_id=dataset.pk, document_id=document.pk)
    keyword = request.GET.get("q", "")[:200]
    shown = request.GET.get("show", "")
    found = selectors.segment_list(
        document=document,
        keyword=keyword,
        enabled=_enabled_filter(shown),
        page=page_number(request),
    )
    context = {
        "dataset": dataset,
        "document": document,
        "page": found,
        "keyword": keyword,
        "shown": shown,
        "form": form,
        "can_manage": can(request.membership.role, "knowledge.manage"),
        "tab": "documents",
    }
    return render(request, "datasets/segments.html", context, status=status)


@workspace_view("knowledge.manage")
def segment_edit_view(request, dataset_id, document_id, segment_id):
    dataset, document, segment = _segment_for(request, dataset_id, document_id, segment_id)
    form = SegmentForm(
        request.POST or None,
        initial={"content": segment.content, "keywords": ", ".join(segment.keywords or [])},
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                segments.segment_update(
                    actor=request.membership,
                    segment=segment,
                    content=form.cleaned_data["content"],
                    keywords=form.keyword_list(),
                )
            except NotFound as exc:
                raise Http404(exc.message) from exc
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, "Chunk saved.")
                return redirect("document_segments", dataset_id=dataset.pk, document_id=document.pk)
    context = {
        "dataset": dataset,
        "document": document,
        "segment": segment,
        "form": form,
        "tab": "documents",
    }
    return render(request, "datasets/segment_edit.html", context, status=status)


@require_POST
@workspace_view("knowledge.manage")
def segment_action_view(request, dataset_id, document_id, segment_id, action: str):
    dataset, document, segment = _segment_for(request, dataset_id, document_id, segment_id)
    services = segments
    try:
        if action == "delete":
            services.segment_delete(actor=request.membership, segment=segment)
            messages.success(request, "Chunk deleted.")
        else:
            enabled = action == "enable"
            services.segment_set_enabled(actor=request.membership, segment=segment, enabled=enabled)
            messages.success(request, "Chunk enabled." if enabled else "Chunk disabled.")
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("document_segments", dataset_id=dataset.pk, document_id=document.pk)
