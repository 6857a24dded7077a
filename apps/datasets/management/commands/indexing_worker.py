import signal
import threading

import dramatiq
from django.core.management.base import BaseCommand

from apps.datasets.tasks import QUEUE


class Command(BaseCommand):
    help = (
        "Run Dramatiq worker threads for the indexing queue in this process, with the "
        "reconciler. With REDIS_URL set they take work from the shared queue; embedded, they "
        "find it through the reconciler (the database is the source of truth)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--threads", type=int, default=2)

    def handle(self, *args, threads: int, **options):
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        worker = dramatiq.Worker(dramatiq.get_broker(), queues={QUEUE}, worker_threads=threads)
        worker.start()
        self.stdout.write(f"indexing worker running ({threads} threads); Ctrl-C stops it")
        self.stdout.flush()
        try:
            stop.wait()
        finally:
            worker.stop(timeout=10_000)
