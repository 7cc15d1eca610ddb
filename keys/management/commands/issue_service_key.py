"""Issue a key for a service ID and print only the token on stdout (audited as a CLI action).

``TOKEN=$(manage.py issue_service_key …)`` captures the token and nothing else: every other
line goes to stderr. There is deliberately no command that mints a person's token.
"""

import re
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import ServiceID
from audit.services import Actor
from keys.management.errors import command_error, tenant_get
from keys.services import key_issue

NO_SUCH_SERVICE_ID = "No service ID named %r in tenant %r."
BAD_EXPIRES_IN = "--expires-in: use a number of days or hours (30d, 12h) or 'never'."
_DURATION = re.compile(r"(?P<count>[1-9][0-9]{0,5})(?P<unit>[dh])")


def parse_expires_in(value: str, now: datetime) -> datetime | None:
    """Return the expiry for ``30d``/``12h``, None for ``never``; raise CommandError else."""
    value = value.strip().lower()
    if value == "never":
        return None  # key_issue refuses it unless the tenant allows non-expiring keys
    match = _DURATION.fullmatch(value)
    if match is None:
        raise CommandError(BAD_EXPIRES_IN)
    unit = "days" if match["unit"] == "d" else "hours"
    return now + timedelta(**{unit: int(match["count"])})


class Command(BaseCommand):
    help = "Issue a service key; print only the token on stdout (store it in a secret store)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--service-id", required=True, help="Service ID name.")
        parser.add_argument("--name", required=True, help="Key name (unique per service ID).")
        parser.add_argument("--scopes", required=True, help="Comma-separated, e.g. keys:read.")
        parser.add_argument("--expires-in", required=True, help="30d, 12h, or never.")
        parser.add_argument("--allowed-ips", default="", help="Comma-separated CIDR ranges.")

    def handle(self, *args, **options):
        now = timezone.now()
        expires_at = parse_expires_in(options["expires_in"], now)
        tenant = tenant_get(options["tenant"])
        try:
            service_id = ServiceID.objects.for_tenant(tenant).get(name=options["service_id"])
        except ServiceID.DoesNotExist:
            raise CommandError(NO_SUCH_SERVICE_ID % (options["service_id"], tenant.slug)) from None
        try:
            key, token = key_issue(
                actor=Actor.cli("issue_service_key"),
                tenant=tenant,
                owner=service_id,
                name=options["name"],
                scopes=options["scopes"],
                expires_at=expires_at,
                allowed_ips=options["allowed_ips"],
                now=now,
            )
        except (ValidationError, PermissionDenied) as error:
            raise command_error(error) from None
        expiry = key.expires_at.isoformat() if key.expires_at else "never"
        self.stderr.write(
            f"Issued key {key.name} (id {key.pk}, {key.hint}) for {service_id.label} in "
            f"{tenant.slug}; scopes {', '.join(key.scopes)}; expires {expiry}. The token below "
            "is shown once: put it in a secret store, never in code or a URL."
        )
        # SECURITY: the token is the only thing on stdout, so `TOKEN=$(…)` captures exactly it.
        self.stdout.write(token)
