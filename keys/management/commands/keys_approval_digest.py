"""E-mail each tenant's owners and admins the keys waiting for their approval: run daily by cron."""

from django.core.management.base import BaseCommand

from keys.services import keys_approval_digest


class Command(BaseCommand):
    help = (
        "E-mail each tenant's owners and admins the keys waiting for their approval (run once "
        "a day from cron; keys_maintain denies those pending too long)."
    )

    def handle(self, *args, **options):
        report = keys_approval_digest()
        self.stdout.write(f"{report.tenants} digest(s) sent, {report.keys} pending key(s) listed.")
