from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from audit.seals import audit_prune
from audit.services import Actor


class Command(BaseCommand):
    help = "Delete sealed audit events older than --before (whole seals only); audited."

    def add_arguments(self, parser):
        parser.add_argument("--before", required=True, help="A date, YYYY-MM-DD (UTC).")

    def handle(self, *args, before: str, **options):
        try:
            cutoff = datetime.strptime(before, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise CommandError("--before must be a date such as 2025-01-31.") from None
        events, seals = audit_prune(before=cutoff, actor=Actor.cli("audit_prune"))
        self.stdout.write(f"Pruned {events} events in {seals} seals older than {before}.")
