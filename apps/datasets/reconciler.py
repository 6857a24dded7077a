"""The indexing reconciler runs in every worker process: at boot and then every
ORRERY_INDEXING_RECONCILE_SECONDS it frees documents whose worker died and re-sends lost
wake-ups. Several workers reconciling at once is harmless: every change is conditional.

This module is loaded while the broker is built, before Django's apps are ready, so it
imports models and actors only inside functions."""

from __future__ import annotations

import logging

from django.conf import settings

from apps.core.worker import PeriodicMiddleware

logger = logging.getLogger(__name__)


def reconcile_once() -> int:
    from apps.datasets import indexing, tasks

    ids = indexing.reconcile()
    tasks.wake(ids)
    return len(ids)


class ReconcilerMiddleware(PeriodicMiddleware):
    thread_name = "orrery-reconciler"

    def interval(self) -> float:
        return settings.ORRERY_INDEXING_RECONCILE_SECONDS

    def tick(self) -> None:
        woken = reconcile_once()
        if woken:
            logger.info("reconciler woke %d waiting documents", woken)
