from django.apps import AppConfig
from django.db.backends.signals import connection_created


class DatasetsConfig(AppConfig):
    name = "apps.datasets"
    label = "datasets"

    def ready(self) -> None:
        # A signal handler, not business logic: per-connection search settings.
        from apps.datasets.search import set_search_options

        connection_created.connect(set_search_options, dispatch_uid="datasets-search-options")
