"""Pages of knowledge bases: list, documents, chunks, hit testing, settings, API keys."""

from django.urls import path

from apps.datasets.views import datasets, documents, hit_testing, segments

_DATASET = "knowledge/<uuid:dataset_id>/"
_DOCUMENT = _DATASET + "documents/<uuid:document_id>/"
_SEGMENT = _DOCUMENT + "chunks/<uuid:segment_id>/"

urlpatterns = [
    path("knowledge/", datasets.dataset_list_view, name="knowledge"),
    path("knowledge/new/", datasets.dataset_create_view, name="dataset_create"),
    path("knowledge/api-keys/", datasets.dataset_api_keys_view, name="dataset_api_keys"),
    path(
        "knowledge/api-keys/<uuid:api_key_id>/revoke/",
        datasets.dataset_api_key_revoke_view,
        name="dataset_api_key_revoke",
    ),
    path(_DATASET, documents.document_list_view, name="dataset_documents"),
    path(_DATASET + "settings/", datasets.dataset_settings_view, name="dataset_settings"),
    path(_DATASET + "delete/", datasets.dataset_delete_view, name="dataset_delete"),
    path(_DATASET + "hit-testing/", hit_testing.hit_testing_view, name="dataset_hit_testing"),
    path(_DATASET + "documents/new/", documents.document_add_view, name="document_add"),
    path(_DATASET + "documents/preview/", documents.document_preview_view, name="document_preview"),
    path(_DOCUMENT, segments.segment_list_view, name="document_segments"),
    *[
        path(
            _DOCUMENT + f"{action}/",
            documents.document_action_view,
            {"action": action},
            name=f"document_{action}",
        )
        for action in documents.ACTIONS
    ],
    path(_SEGMENT + "edit/", segments.segment_edit_view, name="segment_edit"),
    *[
        path(
            _SEGMENT + f"{action}/",
            segments.segment_action_view,
            {"action": action},
            name=f"segment_{action}",
        )
        for action in ("enable", "disable", "delete")
    ],
]
