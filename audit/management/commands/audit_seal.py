from django.core.management.base import BaseCommand, CommandError

from audit.seals import audit_seal
from audit.services import Actor
from audit.signing import SigningKeyError


class Command(BaseCommand):
    help = (
        "Seal the audit events committed since the last seal, in commit order, and sign the seal "
        "with KEYWARD_AUDIT_SIGNING_KEY when it is set (idempotent; run from cron)."
    )

    def handle(self, *args, **options):
        try:
            seal = audit_seal(actor=Actor.cli("audit_seal"))
        except SigningKeyError as error:
            raise CommandError(str(error)) from None
        if seal is None:
            self.stdout.write("Nothing to seal.")
            return
        signed = f"signed by key {seal.signing_key_id}" if seal.signing_key_id else "NOT signed"
        self.stdout.write(
            f"Sealed events {seal.first_event_id}–{seal.last_event_id} "
            f"({seal.event_count} events) as seal {seal.pk}, {signed}: {seal.seal_hash}"
        )
        if not seal.signing_key_id:
            self.stderr.write(UNSIGNED)


UNSIGNED = (
    "WARNING: KEYWARD_AUDIT_SIGNING_KEY is not set, so the seal is not signed: a database "
    "superuser can rewrite events and recompute the chain undetected. "
    "Make a key with manage.py audit_signing_key."
)
