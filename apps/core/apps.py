from django.apps import AppConfig
from django.core.signals import request_finished
from django.db import connections


def close_request_connections(**kwargs) -> None:
    """Under ASGI a request's sync code runs in a thread made for that request, which ends
    with it: a connection kept there for reuse (CONN_MAX_AGE) would never be reused, and
    would stay open until the garbage collector found it. Pool threads (offload, workers)
    keep theirs."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        request_finished.connect(close_request_connections, dispatch_uid="orrery-close-db")
