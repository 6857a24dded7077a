"""Re-wrap workspace data keys under the newest master key, optionally replacing them."""

from django.core.management.base import BaseCommand, CommandError

from apps.core import crypto
from apps.core.models import DataKey


class Command(BaseCommand):
    help = (
        "Re-wrap every workspace data key under the newest ORRERY_MASTER_KEYS entry, after "
        "which older master keys can be removed. With --data-keys, also give each workspace "
        "a new data key and re-encrypt the secrets in registered fields (a token kept "
        "anywhere else becomes unreadable)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--data-keys",
            action="store_true",
            help="also replace each workspace's data key and re-encrypt its secrets",
        )

    def handle(self, *args, data_keys: bool, **options):
        fields = crypto.encrypted_fields()
        if data_keys and not fields:
            raise CommandError(
                "No encrypted fields are registered, so new data keys would leave every "
                "stored secret unreadable; nothing was changed."
            )

        rewrapped, failed = crypto.data_keys_rewrap()
        self.stdout.write(f"Re-wrapped {rewrapped} data keys under the newest master key.")
        for workspace_id in failed:
            self.stderr.write(f"Workspace {workspace_id}: no master key opens its data key.")

        if data_keys:
            self.stdout.write(f"Re-encrypting {', '.join(fields)}.")
            replaced = values = 0
            for workspace_id in DataKey.objects.values_list("workspace_id", flat=True):
                if str(workspace_id) in failed:
                    continue
                try:
                    values += crypto.data_key_replace(workspace=workspace_id)
                except crypto.SecretUnreadable as exc:
                    failed.append(str(workspace_id))
                    self.stderr.write(f"Workspace {workspace_id}: {exc.message} Left unchanged.")
                    continue
                replaced += 1
            self.stdout.write(f"Replaced {replaced} data keys and re-encrypted {values} secrets.")

        if failed:
            raise CommandError(f"{len(failed)} workspace(s) could not be rotated; see above.")
