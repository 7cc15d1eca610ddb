"""Receivers: an audit event a tenant subscribed to becomes outbox rows in its transaction."""

from webhooks import services


def event_to_outbox(sender, event, target=None, **kwargs) -> None:
    services.deliveries_for_event(event=event, target=target)
