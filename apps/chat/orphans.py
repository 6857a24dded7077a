"""Orphaned turns: a Message left `running` because the process streaming it died (a
restart, a crash, a killed container). Nobody will finish it, so it is marked as
interrupted, keeping the partial answer saved with it: status error with
generation.INTERRUPTED, as a watcher of such a turn would mark it.

Every worker process sweeps at boot and then every ORRERY_CHAT_ORPHAN_SWEEP_SECONDS;
`manage.py sweep_orphaned_turns` sweeps once. Several sweeping at once is harmless: only
running rows change.

This module is loaded while the broker is built, before Django's apps are ready, so it
imports models only inside functions."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from apps.core.worker import PeriodicMiddleware

logger = logging.getLogger(__name__)


def orphaned_turns_sweep(*, now: datetime | None = None) -> int:
    """Mark running turns older than generation.ORPHAN_AFTER_SECONDS as interrupted,
    unless this process is still producing them. Returns how many were marked."""
    from apps.chat import generation
    from apps.chat.models import Message, MessageStatus

    now = now or timezone.now()
    cutoff = now - timedelta(seconds=generation.ORPHAN_AFTER_SECONDS)
    stale = Message.objects.filter(status=MessageStatus.RUNNING, created_at__lt=cutoff)
    orphans = [pk for pk, task_id in stale.values_list("pk", "task_id") if not _live(task_id)]
    if not orphans:
        return 0
    return Message.objects.filter(pk__in=orphans, status=MessageStatus.RUNNING).update(
        status=MessageStatus.ERROR, error=generation.INTERRUPTED, updated_at=now
    )


def _live(task_id) -> bool:
    from apps.chat.generation import fanout

    run = fanout.local(str(task_id))
    return run is not None and not run.finished


class OrphanSweepMiddleware(PeriodicMiddleware):
    thread_name = "orrery-orphan-sweep"

    def interval(self) -> float:
        return settings.ORRERY_CHAT_ORPHAN_SWEEP_SECONDS

    def tick(self) -> None:
        swept = orphaned_turns_sweep()
        if swept:
            logger.info("marked %d orphaned turns as interrupted", swept)
