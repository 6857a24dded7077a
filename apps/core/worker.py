"""Background workers: a heartbeat every worker writes, and the in-process worker for
the embedded mode (Dramatiq worker threads inside the server process)."""

from __future__ import annotations

import logging
import os
import socket
import threading

import dramatiq
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

logger = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def write_heartbeat() -> None:
    # Imported here: this module is loaded while the broker is built, before apps are ready.
    from apps.core.models import WorkerHeartbeat

    WorkerHeartbeat.objects.update_or_create(
        worker=worker_name(), defaults={"seen_at": timezone.now()}
    )


class HeartbeatMiddleware(dramatiq.Middleware):
    """Records that this worker process is alive, every ORRERY_HEARTBEAT_SECONDS."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker, worker) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="orrery-heartbeat", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker, worker) -> None:
        self._stop.set()

    def _beat(self) -> None:
        while True:
            try:
                close_old_connections()
                write_heartbeat()
            except Exception:  # a database hiccup must not kill the worker
                logger.exception("worker heartbeat failed")
            if self._stop.wait(settings.ORRERY_HEARTBEAT_SECONDS):
                break
        connection.close()


class PeriodicMiddleware(dramatiq.Middleware):
    """A chore every worker process runs in a thread of its own: at boot, then every
    `interval()` seconds (0 or less: never). Subclasses name the chore with `tick()`;
    several processes running it at once must be harmless (conditional updates)."""

    thread_name = "orrery-periodic"

    def __init__(self) -> None:
        self._stop = threading.Event()

    def interval(self) -> float:
        raise NotImplementedError

    def tick(self) -> None:
        raise NotImplementedError

    def after_worker_boot(self, broker, worker) -> None:
        if self.interval() <= 0:
            return
        self._stop.clear()
        threading.Thread(target=self._loop, name=self.thread_name, daemon=True).start()

    def before_worker_shutdown(self, broker, worker) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                close_old_connections()
                self.tick()
            except Exception:  # a database hiccup must not end the loop
                logger.exception("%s failed", self.thread_name)
            interval = self.interval()
            if interval <= 0 or self._stop.wait(interval):
                break
        connection.close()


def start_embedded_worker(threads: int | None = None) -> dramatiq.Worker:
    """Run Dramatiq worker threads in this process, consuming the configured broker."""
    worker = dramatiq.Worker(
        dramatiq.get_broker(), worker_threads=threads or settings.ORRERY_WORKER_THREADS
    )
    worker.start()
    return worker
