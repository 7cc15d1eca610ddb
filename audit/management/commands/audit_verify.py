from django.core.management.base import BaseCommand, CommandError

import audit
from audit.seals import audit_verify
from audit.services import Actor


class Command(BaseCommand):
    help = "Recompute the audit seal chain; exit 1 naming the first bad seal or event."

    def handle(self, *args, **options):
        result = audit_verify()
        audit.record(
            "audit.verified",
            actor=Actor.cli("audit_verify"),
            outcome="success" if result.ok else "failure",
            metadata={"seals": result.seals, "events": result.events, "problem": result.problem},
        )
        if not result.ok:
            raise CommandError(
                f"TAMPERED: {result.problem} "
                f"({result.seals} seals and {result.events} events verified before it)."
            )
        self.stdout.write(
            f"OK: {result.seals} seals, {result.events} events verified; "
            f"{result.unsealed} events not sealed yet."
        )
