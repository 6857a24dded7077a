"""The indexing reconciler runs in every worker process: at boot and then every
ORRERY_INDEXING_RECONCILE_SECONDS it frees documents whose worker died and re-sends lost
wake-ups. Several workers reconciling at once is harmless: every change is conditional.

This module is loaded while the broker is built, before Django's apps are ready, so it
imports models and actors only inside functions."""

from __future__ import annotations

import logging
import threading

import dramatiq
from django.conf import settings
from django.db import close_old_connections, connection

logger = logging.getLogger(__name__)


def reconcile_once() -> int:
    from apps.datasets import indexing, tasks

    ids = indexing.reconcile()
    tasks.wake(ids)
    return len(ids)


class ReconcilerMiddleware(dramatiq.Middleware):
    def __init__(self) -> None:
        self._stop = threading.Event()

    def after_worker_boot(self, broker, worker) -> None:
        if settings.ORRERY_INDEXING_RECONCILE_SECONDS <= 0:
            return
        self._stop.clear()
        threading.Thread(target=self._loop, name="orrery-reconciler", daemon=True).start()

    def before_worker_shutdown(self, broker, worker) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                close_old_connections()
                woken = reconcile_once()
                if woken:
                    logger.info("reconciler woke %d waiting documents", woken)
            except Exception:  # a database hiccup must not end the loop
                logger.exception("indexing reconciler failed")
            if self._stop.wait(settings.ORRERY_INDEXING_RECONCILE_SECONDS):
                break
        connection.close()
