"""Start-up checks of the webhook settings."""

from django.core import checks

from webhooks import conf


@checks.register(checks.Tags.security, deploy=True)
def check_loopback_refused(app_configs=None, **kwargs):
    if conf.settings.WEBHOOKS_ALLOW_LOOPBACK:
        return [
            checks.Warning(
                "KEYWARD_WEBHOOKS_ALLOW_LOOPBACK is on: webhook deliveries may reach this host's "
                "own services. It is meant for tests only.",
                id="webhooks.W001",
            )
        ]
    return []
