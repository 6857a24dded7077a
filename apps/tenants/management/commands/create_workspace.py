from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.core.errors import DomainError
from apps.tenants import services
from apps.tenants.models import Membership, Role, User, Workspace


class Command(BaseCommand):
    help = (
        "Create (or reuse) an account and a workspace it owns. With --api-key, print a new "
        "management API key on the last line."
    )

    def add_arguments(self, parser):
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--name", required=True, help="Workspace name")
        parser.add_argument("--api-key", action="store_true", help="Also create an API key")

    @transaction.atomic
    def handle(self, *args, owner_email: str, password: str, name: str, api_key: bool, **opts):
        email = owner_email.strip().lower()
        user = User.objects.filter(email__iexact=email).first()
        try:
            if user is None:
                user = services.user_create(email=email, password=password)
                self.stdout.write(f"Created account {email}.")
            else:
                self.stdout.write(f"Reusing account {email}.")
            owned = Workspace.objects.filter(
                memberships__user=user, memberships__role=Role.OWNER, name=name
            ).first()
            if owned is None:
                owned = services.workspace_create(user=user, name=name)
                self.stdout.write(f"Created workspace {owned.name} ({owned.id}).")
            else:
                self.stdout.write(f"Reusing workspace {owned.name} ({owned.id}).")
            if api_key:
                owner = Membership.objects.get(workspace=owned, user=user)
                _, raw = services.api_key_create(actor=owner, name="create_workspace")
                self.stdout.write(raw)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
