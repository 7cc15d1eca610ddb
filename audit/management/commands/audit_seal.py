from django.core.management.base import BaseCommand

from audit.seals import audit_seal
from audit.services import Actor


class Command(BaseCommand):
    help = "Seal the audit events committed since the last seal (idempotent; run from cron)."

    def handle(self, *args, **options):
        seal = audit_seal(actor=Actor.cli("audit_seal"))
        if seal is None:
            self.stdout.write("Nothing to seal.")
        else:
            self.stdout.write(
                f"Sealed events {seal.first_event_id}–{seal.last_event_id} "
                f"({seal.event_count} events) as seal {seal.pk}: {seal.seal_hash}"
            )
