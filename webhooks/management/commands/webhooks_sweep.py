from django.core.management.base import BaseCommand

from webhooks import services


class Command(BaseCommand):
    help = (
        "Hand every due webhook delivery to a worker: retries the task backend could not defer "
        "and attempts whose worker died. Cron it every minute; safe on several hosts."
    )

    def handle(self, *args, **options):
        count = services.deliveries_enqueue_due()
        self.stdout.write(f"{count} webhook deliveries handed to workers.")
