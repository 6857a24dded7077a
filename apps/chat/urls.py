"""Pages of apps: the studio (list, configure, debug, logs) and the public web apps."""

from django.urls import path

from apps.chat.views import webapp
from apps.tenants.views import workspace  # placeholder until the studio pages land

urlpatterns = [
    path("apps/", workspace.section_view, {"section": "apps"}, name="apps"),
    *webapp.urlpatterns,
]
