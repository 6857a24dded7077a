"""Pages of apps: the studio (list, configure, debug, logs) and the public web apps."""

from apps.chat.views import studio, studio_config, studio_logs, webapp

urlpatterns = [
    *studio.urlpatterns,
    *studio_config.urlpatterns,
    *studio_logs.urlpatterns,
    *webapp.urlpatterns,
]
