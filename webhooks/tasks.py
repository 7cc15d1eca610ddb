"""Background tasks (Django's Tasks framework) of webhooks."""

from django.tasks import task

from webhooks import services


@task
def deliver_webhook(delivery_id: int) -> str:
    """Make one attempt at a delivery (see ``services.delivery_attempt``)."""
    return services.delivery_attempt(delivery_id=delivery_id)
