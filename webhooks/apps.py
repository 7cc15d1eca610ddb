from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from audit.signals import event_recorded
        from webhooks import checks, receivers  # noqa: F401 (checks register themselves)

        event_recorded.connect(
            receivers.event_to_outbox, dispatch_uid="webhooks.receivers.event_to_outbox"
        )
