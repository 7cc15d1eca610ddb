from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts import services
from audit.services import Actor


class Command(BaseCommand):
    help = "Create a tenant and its owner; print a one-time link where the owner sets a password."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True)
        parser.add_argument("--owner-email", required=True)

    def handle(self, *args, name, slug, owner_email, **options):
        try:
            tenant, owner = services.tenant_create(
                name=name, slug=slug, owner_email=owner_email, actor=Actor.cli("createtenant")
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        self.stdout.write(f"Created tenant {tenant.slug} with owner {owner.email}.")
        if not owner.has_usable_password():
            link = services.set_password_link(owner)
            self.stdout.write(f"The owner sets a password here (one use, 24 hours):\n  {link}")
