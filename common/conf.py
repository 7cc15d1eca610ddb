"""App settings read lazily, with their defaults in one place per app (like ``django_otp.conf``).

Each app has a ``conf.py`` with ``settings = AppSettings({...defaults})``; code reads
``conf.settings.NAME``, which looks up ``KEYWARD_NAME`` in Django's settings the first time it is
asked for and falls back to the app's default when it is unset or None. Values are kept until a
``KEYWARD_*`` setting changes (``override_settings`` sends ``setting_changed``), as DRF's
``api_settings`` does: several are read on every API request, and an unset setting costs Django
an AttributeError per read.
"""

from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed


class AppSettings:
    """Read ``KEYWARD_<NAME>`` when first asked; fall back to the default given here."""

    def __init__(self, defaults: dict[str, Any]) -> None:
        self._defaults = defaults
        self._values: dict[str, Any] = {}
        setting_changed.connect(self._setting_changed, weak=False)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            pass
        try:
            default = self._defaults[name]
        except KeyError:
            raise AttributeError(f"No Keyward setting {name!r} in this app's conf.") from None
        value = getattr(django_settings, f"KEYWARD_{name}", None)
        value = self._values[name] = default if value is None else value
        return value

    def _setting_changed(self, *, setting: str, **kwargs) -> None:
        if setting.startswith("KEYWARD_"):
            self._values.clear()


# The ground's own settings.
settings = AppSettings(
    {
        # Proxies (addresses or CIDRs) whose X-Forwarded-For hop is trusted to name the client.
        "TRUSTED_PROXIES": [],
        # When the shared cache (Redis) cannot be reached: "open" serves on, with per-process
        # limits instead of shared ones (logged); "closed" answers 503 with Retry-After.
        "CACHE_FAILURE": "open",
        # Seconds a process stops asking a cache that failed before it tries again.
        "CACHE_RETRY_SECONDS": 5,
    }
)
