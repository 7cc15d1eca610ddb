"""The keys app's settings, read lazily with their defaults in one place (like ``django_otp.conf``).

``conf.settings.NAME`` reads ``KEYWARD_NAME`` when asked, so ``override_settings`` takes effect.
"""

from types import MappingProxyType
from typing import Any

from django.conf import settings as django_settings

from common.conf import AppSettings

DEFAULTS: dict[str, Any] = {
    "TOKEN_PREFIX": "kw",
    "EXTRA_SCOPES": MappingProxyType({}),
    "KEY_RATE": "6000/min",
    "FAILED_AUTH_RATE": "60/min",
    "USAGE_ROLLUP_DELAY": 60,  # seconds an API request event waits before it is rolled up
    "LEAK_REPORT_PUBLIC_KEYS": MappingProxyType({}),  # key id -> PEM of an ECDSA P-256 key
    # GitHub's secret scanning signer keys: a file or https URL of a document shaped like
    # https://api.github.com/meta/public_keys/secret_scanning ("" accepts no GitHub report).
    "LEAK_REPORT_GITHUB_KEYS": "",
    "CREDENTIALS_REVOKE_RATE": "60/hour",  # public revoke-by-value requests per address
}

settings = AppSettings(DEFAULTS)


def configured(name: str) -> Any:
    """Return ``KEYWARD_<name>`` exactly as set (None included), else its default: what the
    system checks judge, since ``settings`` replaces a None by the default."""
    return getattr(django_settings, f"KEYWARD_{name}", DEFAULTS[name])
