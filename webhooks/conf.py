"""Webhook settings, read lazily (``KEYWARD_WEBHOOKS_*``)."""

from django.conf import settings as django_settings

from common.conf import AppSettings

settings = AppSettings(
    {
        # Seconds to wait for a receiver to connect and to answer each attempt.
        "WEBHOOKS_TIMEOUT": 10,
        # Hours a delivery is retried (exponential back-off with jitter) before it is given up.
        "WEBHOOKS_RETRY_HOURS": 24,
        # Hours the previous secret also signs deliveries after a rotation.
        "WEBHOOKS_SECRET_OVERLAP_HOURS": 24,
        # Plain http:// endpoints: None means "only when DEBUG".
        "WEBHOOKS_ALLOW_HTTP": None,
        # SECURITY: tests only. Lets deliveries reach loopback addresses (a local receiver).
        "WEBHOOKS_ALLOW_LOOPBACK": False,
    }
)


def allow_http() -> bool:
    value = settings.WEBHOOKS_ALLOW_HTTP
    return django_settings.DEBUG if value is None else bool(value)
