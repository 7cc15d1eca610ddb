"""Keyward's app-level settings, with their defaults in one place (like ``django_otp.conf``)."""

from collections.abc import Mapping

from django.conf import settings as django_settings


class Settings:
    """Read each ``KEYWARD_*`` setting when asked, so ``override_settings`` takes effect."""

    @property
    def TOKEN_PREFIX(self) -> str:
        return getattr(django_settings, "KEYWARD_TOKEN_PREFIX", "kw")

    @property
    def EXTRA_SCOPES(self) -> Mapping[str, str]:
        return getattr(django_settings, "KEYWARD_EXTRA_SCOPES", {})


settings = Settings()
