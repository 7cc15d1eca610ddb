"""Create a service ID in a tenant (audited as a CLI action)."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand

from accounts.roles import Role
from accounts.services import service_id_create
from audit.services import Actor
from keys.management.errors import command_error, tenant_get


class Command(BaseCommand):
    help = "Create a service ID (a tenant's functional identity that owns service keys)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument(
            "--name", required=True, help="Service ID name (letters, digits, -, _)."
        )
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--description", default="")

    def handle(self, *args, tenant: str, name: str, role: str, description: str, **options):
        found = tenant_get(tenant)
        try:
            service_id = service_id_create(
                tenant=found,
                actor=Actor.cli("create_service_id"),
                name=name,
                role=role,
                description=description,
            )
        except (ValidationError, PermissionDenied) as error:
            raise command_error(error) from None
        self.stdout.write(
            f"Created service ID {service_id.name} (id {service_id.pk}) in {found.slug} "
            f"with role {service_id.role}."
        )
