"""Run the key lifecycle jobs once: usage rollup, expiries, expiry warnings, unused keys.

Idempotent and safe on several hosts at once: run it from cron every few minutes.
"""

from django.core.management.base import BaseCommand

from keys.services import keys_maintain


class Command(BaseCommand):
    help = (
        "Roll up key usage, record expiries, e-mail expiry warnings and revoke keys unused for "
        "their tenant's policy (idempotent; run from cron every few minutes)."
    )

    def handle(self, *args, **options):
        report = keys_maintain()
        self.stdout.write("\n".join(report.lines()))
