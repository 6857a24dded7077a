from django.core.management.base import BaseCommand

from apps.chat.orphans import orphaned_turns_sweep


class Command(BaseCommand):
    help = (
        "Mark answers left 'generating' by a server that died as interrupted (keeping what "
        "was written). Workers do this by themselves every ORRERY_CHAT_ORPHAN_SWEEP_SECONDS; "
        "this runs one pass now."
    )

    def handle(self, *args, **options):
        swept = orphaned_turns_sweep()
        self.stdout.write(f"{swept} orphaned turn(s) marked as interrupted")
