from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from audit.grants import audit_grants

NOT_POSTGRESQL = "Only PostgreSQL can be checked: this database is {vendor}."


class Command(BaseCommand):
    help = (
        "Tell whether the database role the app connects as can rewrite the audit tables "
        "(UPDATE, DELETE, TRUNCATE, own them, disable or replace the append-only trigger). "
        "Exit 0 when it cannot, 1 when it can, 2 when the database is not PostgreSQL."
    )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError(NOT_POSTGRESQL.format(vendor=connection.vendor), returncode=2)
        role, findings = audit_grants()
        for finding in findings:
            self.stdout.write(f"{'FAIL' if finding.fatal else 'note'}: {finding.text}")
        fatal = [finding for finding in findings if finding.fatal]
        if fatal:
            raise CommandError(
                f"role {role} can rewrite the audit tables ({len(fatal)} findings above)."
            )
        self.stdout.write(f"OK: role {role} cannot change, delete or unprotect audit records.")
