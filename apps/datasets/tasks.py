"""Dramatiq actors for knowledge bases, on their own `indexing` queue so they never hold
up other work. Each actor receives ids only; the row says what to do."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

import dramatiq
from django.conf import settings
from django.db import transaction

from apps.datasets import indexing

logger = logging.getLogger(__name__)

QUEUE = "indexing"
# At most ORRERY_INDEXING_CONCURRENCY documents at once in this process; a message that
# finds every slot busy comes back later instead of holding a worker thread.
_slots: tuple[int, threading.BoundedSemaphore] | None = None
_slots_lock = threading.Lock()
BUSY_DELAY_MS = 2_000


def slots() -> threading.BoundedSemaphore:
    global _slots
    size = max(1, settings.ORRERY_INDEXING_CONCURRENCY)
    with _slots_lock:
        if _slots is None or _slots[0] != size:
            _slots = (size, threading.BoundedSemaphore(size))
        return _slots[1]


@dramatiq.actor(
    queue_name=QUEUE,
    max_retries=3,
    min_backoff=2_000,
    max_backoff=60_000,
    time_limit=settings.ORRERY_INDEXING_TIME_LIMIT_SECONDS * 1000,
    retry_when=lambda retries, exc: isinstance(exc, indexing.Retryable) and retries < 3,
)
def index_document(document_id: str) -> None:
    slot = slots()
    if not slot.acquire(blocking=False):
        index_document.send_with_options(args=(document_id,), delay=BUSY_DELAY_MS)
        return
    try:
        outcome = indexing.index_document(document_id)
        logger.info("indexing %s: %s", document_id, outcome.status)
    finally:
        slot.release()


@dramatiq.actor(queue_name=QUEUE, max_retries=0, time_limit=120_000)
def reconcile_indexing() -> None:
    wake(indexing.reconcile())


def wake(document_ids: Iterable) -> None:
    """Send a wake-up for each document (now; not tied to any transaction)."""
    for document_id in document_ids:
        index_document.send(str(document_id))


def enqueue(document_ids: Iterable) -> None:
    """Wake the documents once the current transaction commits."""
    ids = [str(document_id) for document_id in document_ids]
    transaction.on_commit(lambda: wake(ids))
