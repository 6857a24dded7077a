"""Knowledge pages, one module per area: knowledge bases, documents, chunks, hit testing."""

from django.http import Http404

from apps.core.errors import NotFound
from apps.datasets import selectors
from apps.datasets.models import Dataset


def dataset_for(request, dataset_id) -> Dataset:
    """The knowledge base if this member may see it; any other id is a 404."""
    try:
        return selectors.dataset_get(membership=request.membership, dataset_id=dataset_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def page_number(request) -> int:
    try:
        return max(1, int(request.GET.get("page") or 1))
    except ValueError:
        return 1
