"""Revoke a key of a tenant now, with a reason (audited as a CLI action)."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from audit.services import Actor
from keys.management.errors import command_error, tenant_get
from keys.models import ApiKey
from keys.services import key_revoke

NO_SUCH_KEY = "No key %s in tenant %r."


class Command(BaseCommand):
    help = "Revoke a key (personal or service) of a tenant, irreversibly."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--key-id", required=True, type=int)
        parser.add_argument("--reason", required=True)

    def handle(self, *args, tenant: str, key_id: int, reason: str, **options):
        found = tenant_get(tenant)
        try:
            key = ApiKey.objects.for_tenant(found).select_related("tenant").get(pk=key_id)
        except ApiKey.DoesNotExist:
            raise CommandError(NO_SUCH_KEY % (key_id, found.slug)) from None
        try:
            key_revoke(actor=Actor.cli("revoke_key"), key=key, reason=reason)
        except (ValidationError, PermissionDenied) as error:
            raise command_error(error) from None
        self.stdout.write(f"Revoked key {key.name} ({key.hint}) of {found.slug}.")
