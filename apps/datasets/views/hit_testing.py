"""Hit testing: run a query against a knowledge base and see the ranked chunks with their
scores and sources, beside the history of past queries."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render

from apps.core.errors import DomainError, NotFound
from apps.datasets import hit_testing
from apps.datasets.forms import HitTestingForm, RetrievalForm
from apps.datasets.selectors import rerank_model_choices
from apps.datasets.views import dataset_for
from apps.tenants.decorators import workspace_view

HISTORY_SHOWN = 20


@workspace_view("knowledge.view")
def hit_testing_view(request, dataset_id):
    dataset = dataset_for(request, dataset_id)
    data = request.POST or None
    form = HitTestingForm(data, initial={"query": request.GET.get("q", "")[:250]})
    retrieval_form = RetrievalForm(
        data,
        rerank_models=rerank_model_choices(workspace=request.workspace),
        initial=RetrievalForm.initial_from(dataset.retrieval_model or {}),
        prefix="rm",
    )
    records, error, status = None, "", 200
    if request.method == "POST":
        status = 400
        if form.is_valid() and retrieval_form.is_valid():
            try:
                records = hit_testing.hit_testing(
                    actor=request.membership,
                    dataset=dataset,
                    query=form.cleaned_data["query"],
                    retrieval_model=retrieval_form.retrieval_model(),
                    source="hit_testing",
                ).records
                status = 200
            except NotFound as exc:
                raise Http404(exc.message) from exc
            except DomainError as exc:
                error = exc.message
    context = {
        "dataset": dataset,
        "form": form,
        "retrieval_form": retrieval_form,
        "records": records,
        "error": error,
        "history": hit_testing.dataset_query_history(workspace=request.workspace, dataset=dataset)[
            :HISTORY_SHOWN
        ],
        "tab": "hit_testing",
    }
    return render(request, "datasets/hit_testing.html", context, status=status)
