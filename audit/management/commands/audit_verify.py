from django.core.management.base import BaseCommand, CommandError

import audit
from audit.seals import audit_verify
from audit.services import Actor
from audit.signing import SigningKeyError

NOT_SIGNED = (
    "WARNING: {unsigned} of {seals} seals are not signed: a database superuser can rewrite the "
    "events they cover and recompute them undetected."
)
NO_KEYS = (
    "WARNING: no signing or verification key is configured (KEYWARD_AUDIT_SIGNING_KEY, "
    "KEYWARD_AUDIT_VERIFY_KEYS): the chain proves nothing against a database superuser, who "
    "can rewrite events and recompute every seal."
)


class Command(BaseCommand):
    help = (
        "Recompute the audit seal chain and check its signatures; exit 1 naming the first bad "
        "seal or event."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--expect",
            metavar="SEAL_HASH",
            help="A seal hash written down earlier (audit_seal prints each one): the chain must "
            "still hold it.",
        )

    def handle(self, *args, expect=None, **options):
        try:
            result = audit_verify(expect=expect)
        except SigningKeyError as error:
            raise CommandError(str(error)) from None
        audit.record(
            "audit.verified",
            actor=Actor.cli("audit_verify"),
            outcome="success" if result.ok else "failure",
            metadata={
                "seals": result.seals,
                "events": result.events,
                "signed": result.signed,
                "problem": result.problem,
            },
        )
        if not result.ok:
            raise CommandError(
                f"TAMPERED: {result.problem} "
                f"({result.seals} seals and {result.events} events verified before it)."
            )
        self.stdout.write(
            f"OK: {result.seals} seals, {result.events} events verified; "
            f"{result.signed} seals signed; {result.unsealed} events not sealed yet."
        )
        if not result.keys:
            self.stderr.write(NO_KEYS)
        elif result.unsigned:
            self.stderr.write(NOT_SIGNED.format(unsigned=result.unsigned, seals=result.seals))
