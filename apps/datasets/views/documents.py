"""A knowledge base's documents: the live list, adding documents (files, text, a web
page) with a preview of the first chunks, and the per-document actions."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.core.errors import DomainError, NotFound
from apps.datasets import selectors
from apps.datasets.forms import ProcessRuleForm, TextDocumentForm, UrlDocumentForm
from apps.datasets.services import documents
from apps.datasets.views import dataset_for, page_number
from apps.tenants.decorators import workspace_view
from apps.tenants.permissions import can

POLL_SECONDS = 2
SOURCES = ("file", "text", "url")


def _list_context(request, dataset) -> dict:
    keyword = request.GET.get("q", "")[:100]
    found = selectors.document_list(dataset=dataset, keyword=keyword, page=page_number(request))
    return {
        "dataset": dataset,
        "page": found,
        "keyword": keyword,
        "polling": selectors.documents_in_progress(dataset=dataset),
        "poll_seconds": POLL_SECONDS,
        "can_manage": can(request.membership.role, "knowledge.manage"),
        "tab": "documents",
    }


@workspace_view("knowledge.view")
def document_list_view(request, dataset_id):
    dataset = dataset_for(request, dataset_id)
    context = _list_context(request, dataset)
    if request.htmx and request.GET.get("partial") == "table":
        return render(request, "datasets/_documents_table.html", context)
    return render(request, "datasets/documents.html", context)


def _add_context(request, dataset, *, source="file", **forms) -> dict:
    rules_initial = ProcessRuleForm.initial_from(dataset.process_rule or {})
    return {
        "dataset": dataset,
        "source": source,
        "rules": forms.get("rules") or ProcessRuleForm(initial=rules_initial),
        "text_form": forms.get("text_form") or TextDocumentForm(),
        "url_form": forms.get("url_form") or UrlDocumentForm(),
        "file_error": forms.get("file_error", ""),
        "tab": "documents",
    }


@workspace_view("knowledge.manage")
def document_add_view(request, dataset_id):
    """GET: the three ways to add documents. POST: add them and start indexing."""
    dataset = dataset_for(request, dataset_id)
    if request.method != "POST":
        source = request.GET.get("source", "file")
        return render(
            request,
            "datasets/document_add.html",
            _add_context(request, dataset, source=source if source in SOURCES else "file"),
        )
    source = request.POST.get("source", "file")
    source = source if source in SOURCES else "file"
    rules = ProcessRuleForm(request.POST)
    text_form = TextDocumentForm(request.POST if source == "text" else None)
    url_form = UrlDocumentForm(request.POST if source == "url" else None)
    forms = {"rules": rules, "text_form": text_form, "url_form": url_form}
    file_error = ""
    if rules.is_valid():
        kwargs = {
            "actor": request.membership,
            "dataset": dataset,
            "process_rule": rules.process_rule(),
        }
        try:
            if source == "file":
                files = request.FILES.getlist("files")
                if not files:
                    raise DomainError("Choose at least one file to upload.")
                _, created = documents.document_create_from_files(files=files, **kwargs)
            elif source == "text" and text_form.is_valid():
                created = [
                    documents.document_create_from_text(
                        name=text_form.cleaned_data["name"],
                        text=text_form.cleaned_data["text"],
                        **kwargs,
                    )
                ]
            elif source == "url" and url_form.is_valid():
                created = [
                    documents.document_create_from_url(url=url_form.cleaned_data["url"], **kwargs)
                ]
            else:
                created = None
        except NotFound as exc:
            raise Http404(exc.message) from exc
        except DomainError as exc:
            created = None
            if source == "text":
                text_form.add_error(None, exc.message)
            elif source == "url":
                url_form.add_error("url", exc.message)
            else:
                file_error = exc.message
        if created:
            count = len(created)
            messages.success(
                request,
                f"{count} document{'s' if count != 1 else ''} added; indexing has started.",
            )
            return redirect("dataset_documents", dataset_id=dataset.pk)
    context = _add_context(request, dataset, source=source, file_error=file_error, **forms)
    return render(request, "datasets/document_add.html", context, status=400)


@require_POST
@workspace_view("knowledge.manage")
def document_preview_view(request, dataset_id):
    """The first chunks the chosen rules would make, before anything is stored."""
    dataset = dataset_for(request, dataset_id)
    rules = ProcessRuleForm(request.POST)
    context: dict = {"chunks": [], "error": ""}
    if not rules.is_valid():
        context["error"] = "Check the chunking settings: " + "; ".join(
            f"{field.replace('_', ' ')}: {errors[0]}" for field, errors in rules.errors.items()
        )
    else:
        source = request.POST.get("source", "file")
        files = request.FILES.getlist("files")
        try:
            if source == "url":
                raise DomainError(
                    "A web page is previewed once it is added: open it from the documents list."
                )
            context["chunks"] = documents.chunk_preview(
                actor=request.membership,
                process_rule=rules.process_rule(),
                doc_form=dataset.doc_form,
                text=request.POST.get("text", "") if source == "text" else None,
                file=files[0] if source == "file" and files else None,
            )
            context["of_name"] = files[0].name if source == "file" and len(files) > 1 else ""
        except NotFound as exc:
            raise Http404(exc.message) from exc
        except DomainError as exc:
            context["error"] = exc.message
    return render(request, "datasets/_preview.html", context)


# Each action: (service function name, extra keyword arguments, message when done).
ACTIONS = {
    "retry": ("document_retry", {}, "Indexing restarted."),
    "pause": ("document_pause", {}, "Indexing paused."),
    "resume": ("document_resume", {}, "Indexing resumed."),
    "reindex": ("document_reindex", {}, "Re-indexing started."),
    "enable": ("document_set_enabled", {"enabled": True}, "Document enabled."),
    "disable": ("document_set_enabled", {"enabled": False}, "Document disabled."),
    "delete": ("document_delete", {}, "Document deleted."),
}


@require_POST
@workspace_view("knowledge.manage")
def document_action_view(request, dataset_id, document_id, action: str):
    dataset = dataset_for(request, dataset_id)
    try:
        document = selectors.document_get(dataset=dataset, document_id=document_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    name, extra, success = ACTIONS[action]
    try:
        getattr(documents, name)(actor=request.membership, document=document, **extra)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{document.name}: {success}")
    if request.htmx and action != "delete" and request.POST.get("from") == "list":
        context = _list_context(request, dataset)
        return render(request, "datasets/_documents_table.html", context)
    if action == "delete" or request.POST.get("from") == "list":
        return redirect("dataset_documents", dataset_id=dataset.pk)
    return redirect(reverse("document_segments", args=[dataset.pk, document.pk]))
