"""Pages of knowledge bases: list, documents, chunks, hit testing, settings."""

from django.urls import path

from apps.tenants.views import workspace  # placeholder until the knowledge pages land

urlpatterns = [
    path("knowledge/", workspace.section_view, {"section": "knowledge"}, name="knowledge"),
]
