from django.core.management.base import BaseCommand

from keys.maintenance import keys_expire


class Command(BaseCommand):
    help = "Record the expiry of keys past their expiry date (idempotent; run from cron)."

    def handle(self, *args, **options):
        expired = keys_expire()
        self.stdout.write(f"{expired} keys expired.")
