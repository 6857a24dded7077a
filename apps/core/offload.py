"""Running sync (ORM) work from async code without queueing behind everyone else."""

from collections.abc import Callable
from functools import wraps

from asgiref.sync import sync_to_async
from django.db import close_old_connections


def offload(fn: Callable) -> Callable:
    """`await offload(fn)(...)` runs fn in a pool thread of its own. asgiref's default,
    thread-sensitive mode would run every request's sync work on one shared thread.

    Pool threads outlive requests, so the database connection is handled as at the end of
    a request: closed unless persistent connections (CONN_MAX_AGE) are configured."""

    @wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run, thread_sensitive=False)
