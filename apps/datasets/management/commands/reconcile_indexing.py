from django.core.management.base import BaseCommand

from apps.datasets.reconciler import reconcile_once


class Command(BaseCommand):
    help = (
        "Re-queue documents left in a non-terminal state past their lease (a killed worker) "
        "and re-send lost wake-ups. Workers do this by themselves every "
        "ORRERY_INDEXING_RECONCILE_SECONDS; this runs one pass now."
    )

    def handle(self, *args, **options):
        woken = reconcile_once()
        self.stdout.write(f"{woken} waiting document(s) woken")
